"""The plugin as the core sees it: loaded through its real entry point, listed by the app, and every embedding model
and LLM provider shaped as its hook promises, with its settings checked by name."""

from __future__ import annotations

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding

import privex_llms
from privex.plugins import load_plugins

EMBEDDING_NAMES = {"all-MiniLM-L6-v2", "ollama", "openai"}
PROVIDER_NAMES = {"extractive", "ollama", "openai"}


def test_entry_point_registers_the_embedding_models_and_llm_providers():
    plugins = load_plugins(allow=["llms"])
    assert EMBEDDING_NAMES <= set(plugins.embedding_models)
    assert plugins.embedding_models.owner("all-MiniLM-L6-v2") == "llms"
    assert PROVIDER_NAMES <= set(plugins.llm_providers)
    assert plugins.llm_providers.owner("extractive") == "llms"


def test_app_lists_the_plugin_with_its_distribution(make_app):
    application = make_app(LOAD_PLUGINS=["llms"])
    listed = {plugin["name"]: plugin for plugin in application.test_client().get("/api/v1/plugins").get_json()}
    llms = listed["llms"]
    assert llms["distribution"] == "privex-llms" and llms["version"] == "0.1.0"
    assert {"privex_embedding_models", "privex_llm_providers"} <= set(llms["hooks"])
    assert set(llms["provides"]["embedding_models"]) == EMBEDDING_NAMES
    assert set(llms["provides"]["llm_providers"]) == PROVIDER_NAMES


def test_embedding_models_have_the_attributes_the_hook_promises():
    models = {model.name: model for model in privex_llms.privex_embedding_models()}
    assert set(models) == EMBEDDING_NAMES
    assert models["all-MiniLM-L6-v2"].dimension == 384
    assert models["ollama"].dimension is None and models["openai"].dimension is None
    for model in models.values():
        assert model.version == "0.1.0"
        schema = model.config_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert all("default" in prop and prop["description"] for prop in schema["properties"].values())


def test_remote_models_create_with_their_defaults_without_touching_the_network():
    models = {model.name: model for model in privex_llms.privex_embedding_models()}
    ollama = models["ollama"].create()
    openai = models["openai"].create(api_key="sk-test", dimension=256)
    assert isinstance(ollama, BaseEmbedding) and isinstance(openai, BaseEmbedding)
    assert (ollama.base_url, ollama.model_name, ollama.embed_batch_size, ollama.timeout) == (
        "http://127.0.0.1:11434", "nomic-embed-text", 32, 60)
    assert (openai.base_url, openai.model_name, openai.dimension) == (
        "https://api.openai.com/v1", "text-embedding-3-small", 256)


def test_api_key_is_never_serialised_nor_shown():
    model = {m.name: m for m in privex_llms.privex_embedding_models()}["openai"].create(api_key="sk-very-secret")
    for shown in (repr(model), str(model.model_dump()), model.to_json(), str(model.to_payload())):
        assert "sk-very-secret" not in shown
    schema = {m.name: m for m in privex_llms.privex_embedding_models()}["openai"].config_schema
    assert schema["properties"]["api_key"]["writeOnly"] is True


@pytest.mark.parametrize(("name", "config", "message"), [
    ("openai", {"batchsize": 3}, r"has no setting 'batchsize' \(settings: base_url, model, api_key"),
    ("ollama", {"batch_size": 0}, r"batch_size must be at least 1, got 0"),
    ("ollama", {"batch_size": 2.5}, r"batch_size must be a whole number, got 2.5"),
    ("openai", {"timeout": "soon"}, r"timeout must be a number, got 'soon'"),
    ("openai", {"timeout": 0}, r"timeout must be more than 0"),
    ("openai", {"dimension": True}, r"dimension must be a whole number or empty"),
    ("ollama", {"model": ""}, r"model must not be empty"),
    ("ollama", {"base_url": "localhost:11434"}, r"base_url must be an http:// or https:// URL, got 'localhost:11434'"),
    ("all-MiniLM-L6-v2", {"model": "other"}, r"has no setting 'model' \(settings: batch_size\)"),
])
def test_bad_settings_are_refused_naming_the_setting(name, config, message):
    model = {m.name: m for m in privex_llms.privex_embedding_models()}[name]
    with pytest.raises(ValueError, match=message):
        model.create(**config)


def providers() -> dict:
    return {provider.name: provider for provider in privex_llms.privex_llm_providers()}


def test_llm_providers_have_the_attributes_the_hook_promises():
    assert set(providers()) == PROVIDER_NAMES
    for provider in providers().values():
        assert provider.version == "0.1.0" and provider.description
        schema = provider.config_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert all("default" in prop and prop["description"] for prop in schema["properties"].values())
        assert provider.settings({}) == {key: prop["default"] for key, prop in schema["properties"].items()}
    for name in ("ollama", "openai"):
        properties = providers()[name].config_schema["properties"]
        assert {"base_url", "api_key", "model", "temperature", "max_tokens", "timeout", "connect_timeout"} <= set(
            properties)
        assert properties["api_key"]["writeOnly"] is True
    assert providers()["ollama"].settings({})["base_url"] == "http://127.0.0.1:11434"
    assert providers()["openai"].settings({})["base_url"] == "https://api.openai.com/v1"
    assert set(providers()["extractive"].config_schema["properties"]) == {"fallback_message", "max_sentences"}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("ollama", {"temprature": 0.3}, r"LLM provider 'ollama' has no setting 'temprature' \(settings: base_url"),
    ("openai", {"temperature": 3}, r"LLM provider 'openai': temperature must be at most 2, got 3"),
    ("openai", {"max_tokens": 0}, r"max_tokens must be at least 1, got 0"),
    ("ollama", {"timeout": 0}, r"timeout must be more than 0"),
    ("ollama", {"base_url": "localhost:11434"}, r"base_url must be an http:// or https:// URL"),
    ("openai", {"include_usage": "yes"}, r"include_usage must be a boolean, got 'yes'"),
    ("extractive", {"max_sentences": 0}, r"max_sentences must be at least 1"),
    ("extractive", {"fallback_message": "  "}, r"fallback_message must not be empty"),
    ("extractive", {"model": "gpt-4o"}, r"LLM provider 'extractive' has no setting 'model'"),
])
def test_bad_params_are_refused_by_name_when_chat_is_called(name, params, message):
    # chat() checks its arguments when called (nothing is read from the iterator here), before any request.
    with pytest.raises(ValueError, match=message):
        providers()[name].chat([{"role": "user", "content": "hi"}], params)


@pytest.mark.parametrize(("messages", "message"), [
    ([], r"messages must be a non-empty list"),
    ([{"role": "user"}], r"messages\[0\]: content must be a string"),
    ([{"role": "robot", "content": "hi"}], r"messages\[0\]: role must be one of system, user, assistant"),
    ([{"role": "system", "content": "Be brief."}], r"no 'user' message"),
    (["hi"], r"messages\[0\] must be a dict"),
])
def test_malformed_messages_are_refused(messages, message):
    for provider in providers().values():
        with pytest.raises(ValueError, match=message):
            provider.chat(messages, {})


def test_context_must_be_chunks_with_text():
    with pytest.raises(ValueError, match=r"context\[0\] must be a dict with a 'text' string"):
        providers()["extractive"].chat([{"role": "user", "content": "hi"}], {}, context=["a chunk"])
