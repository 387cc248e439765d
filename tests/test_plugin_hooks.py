"""Every hook: a throwaway plugin implements it and the core sees the result. Plus two guards that keep the hooks,
their tests and their documentation in step."""

from __future__ import annotations

import inspect
import io
import re
import sys
from pathlib import Path

from privex import hookimpl, hookspecs
from privex.plugins import REGISTRY_HOOKS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return sorted(name for name in dir(hookspecs) if name.startswith("privex_"))


def provided(client, plugin_name: str) -> dict:
    listed = {plugin["name"]: plugin for plugin in client.get("/api/v1/plugins").get_json()}
    return listed[plugin_name]["provides"]


def registry(app, attr):
    return getattr(app.extensions["privex"].plugins, attr)


class Implementation:
    def __init__(self, name, **attributes):
        self.name = name
        self.__dict__.update(attributes)


def test_hook_privex_node_types(app, client, register_plugin):
    class Upper:
        name = "upper"
        config_schema = {"type": "object"}
        inputs, outputs = ("text",), ("text",)

        def run(self, ctx, inputs):
            return {"text": inputs["text"].upper()}

    class NodePlugin:
        @hookimpl
        def privex_node_types(self):
            return [Upper]

    register_plugin(NodePlugin(), name="nodes-under-test")
    node = registry(app, "node_types")["upper"]
    assert node().run({}, {"text": "hi"}) == {"text": "HI"}
    assert provided(client, "nodes-under-test") == {"node_types": ["upper"]}


def test_hook_privex_vector_stores(app, client, register_plugin):
    class StorePlugin:
        @hookimpl
        def privex_vector_stores(self):
            return [Implementation("memory", create=lambda knowledge_base, embedding_dim: ("store", embedding_dim))]

    register_plugin(StorePlugin(), name="stores-under-test")
    assert registry(app, "vector_stores")["memory"].create(knowledge_base=None, embedding_dim=384) == ("store", 384)
    assert registry(app, "vector_stores").owner("memory") == "stores-under-test"
    assert provided(client, "stores-under-test") == {"vector_stores": ["memory"]}


def test_hook_privex_document_parsers(app, client, register_plugin):
    class ParserPlugin:
        @hookimpl
        def privex_document_parsers(self):
            return [Implementation("rot13", extensions=(".r13",), mime_types=("text/x-rot13",),
                                   parse=lambda stream, filename: [stream.read().decode()[::-1]])]

    register_plugin(ParserPlugin(), name="parsers-under-test")
    parser = registry(app, "document_parsers")["rot13"]
    assert parser.parse(io.BytesIO(b"abc"), "a.r13") == ["cba"]
    assert provided(client, "parsers-under-test") == {"document_parsers": ["rot13"]}


def test_hook_privex_source_connectors(app, client, register_plugin):
    class ConnectorPlugin:
        @hookimpl
        def privex_source_connectors(self):
            return [Implementation("static", config_schema={},
                                   fetch=lambda config, credential: iter(config["pages"]))]

    register_plugin(ConnectorPlugin(), name="connectors-under-test")
    connector = registry(app, "source_connectors")["static"]
    assert list(connector.fetch({"pages": ["a", "b"]}, None)) == ["a", "b"]
    assert provided(client, "connectors-under-test") == {"source_connectors": ["static"]}


def test_hook_privex_chunkers(app, client, register_plugin):
    class ChunkerPlugin:
        @hookimpl
        def privex_chunkers(self):
            return [Implementation("halves", config_schema={}, create=lambda **config: config)]

    register_plugin(ChunkerPlugin(), name="chunkers-under-test")
    assert registry(app, "chunkers")["halves"].create(chunk_size=128) == {"chunk_size": 128}
    assert provided(client, "chunkers-under-test") == {"chunkers": ["halves"]}


def test_hook_privex_embedding_models(app, client, register_plugin):
    class EmbeddingPlugin:
        @hookimpl
        def privex_embedding_models(self):
            return [Implementation("ones-3", dimension=3, create=lambda **config: [1.0, 1.0, 1.0])]

    register_plugin(EmbeddingPlugin(), name="embeddings-under-test")
    model = registry(app, "embedding_models")["ones-3"]
    assert model.dimension == 3 and len(model.create()) == 3
    assert provided(client, "embeddings-under-test") == {"embedding_models": ["ones-3"]}


def test_hook_privex_llm_providers(app, client, register_plugin):
    class Echo:
        name = "echo"

        def chat(self, messages, params, *, context=None):
            for word in messages[-1]["content"].split():
                yield {"type": "delta", "text": word}
            yield {"type": "done", "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                                             "estimated": False}, "model": "echo", "finish_reason": "stop"}

    class ProviderPlugin:
        @hookimpl
        def privex_llm_providers(self):
            return [Echo()]

    register_plugin(ProviderPlugin(), name="providers-under-test")
    deltas = list(registry(app, "llm_providers")["echo"].chat([{"role": "user", "content": "a b"}], {}))
    assert [event.get("text") for event in deltas] == ["a", "b", None] and deltas[-1]["type"] == "done"
    assert provided(client, "providers-under-test") == {"llm_providers": ["echo"]}


def test_hook_privex_channels(app, client, register_plugin):
    sent = []

    class ChannelPlugin:
        @hookimpl
        def privex_channels(self):
            return [Implementation("pigeon", verify=lambda request, config: True, parse=lambda request: request,
                                   send=lambda config, chat_id, text: sent.append((chat_id, text)),
                                   register=lambda config, url: None, unregister=lambda config: None)]

    register_plugin(ChannelPlugin(), name="channels-under-test")
    registry(app, "channels")["pigeon"].send({}, "chat-1", "hello")
    assert sent == [("chat-1", "hello")]
    assert provided(client, "channels-under-test") == {"channels": ["pigeon"]}


def test_hook_privex_startup(make_app):
    seen = []

    class StartupPlugin:
        @hookimpl
        def privex_startup(self, app):
            seen.append(app)

            @app.get("/hello-from-plugin")
            def hello():
                return "hello"

    application = make_app(plugins=[StartupPlugin()])
    assert seen == [application]
    assert application.test_client().get("/hello-from-plugin").get_data(as_text=True) == "hello"


def test_every_registry_hook_has_a_registry():
    registry_hooks = {hook for hook, _kind in REGISTRY_HOOKS.values()}
    assert registry_hooks == set(hook_names()) - {"privex_startup"}


def test_every_hook_has_a_test():
    tests = {name for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")}
    missing = [hook for hook in hook_names() if f"test_hook_{hook}" not in tests]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_every_hook_is_documented_with_its_exact_signature():
    documented = set(re.findall(r"^### `(privex_\w+\(.*?\))`$", DOCS.read_text(), flags=re.MULTILINE))
    expected = {f"{name}{inspect.signature(getattr(hookspecs, name))}" for name in hook_names()}
    assert not expected - documented, f"undocumented in docs/plugins.md: {sorted(expected - documented)}"
    assert not documented - expected, f"documented but not hooks: {sorted(documented - expected)}"
