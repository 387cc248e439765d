"""Loading plugins from entry points: the allow-list, tracing, and every way loading can fail, each named."""

from __future__ import annotations

import json
import logging
import textwrap
import uuid

import pytest
from flask.cli import ScriptInfo

from privex import hookimpl
from privex.cli import main
from privex.plugins import NotInstalled, PluginError, load_plugins


@pytest.fixture()
def install(tmp_path, monkeypatch):
    """Install a fake distribution with one `privex` entry point: a real dist-info on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def install_(entry_point: str, source: str, version: str = "1.2.3") -> str:
        module = f"privex_fake_{entry_point.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        dist_info = tmp_path / f"{module}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n")
        (dist_info / "entry_points.txt").write_text(f"[privex]\n{entry_point} = {module}\n")
        return module

    return install_


PROVIDER = """
    from privex import hookimpl

    class Provider:
        name = "{name}"

        def chat(self, messages, params):
            yield "ok"

    @hookimpl
    def privex_llm_providers():
        return [Provider()]
"""


def test_installed_plugin_is_loaded_with_its_distribution_and_version(install):
    module = install("shouty", PROVIDER.format(name="shout"), version="2.0.1")
    plugins = load_plugins()
    assert "shout" in plugins.llm_providers
    described = {plugin["name"]: plugin for plugin in plugins.describe()}["shouty"]
    assert described == {"name": "shouty", "distribution": module, "version": "2.0.1",
                         "hooks": ["privex_llm_providers"], "provides": {"llm_providers": ["shout"]}}


def test_allow_list_loads_only_the_named_plugins(install):
    install("first", PROVIDER.format(name="one"))
    install("second", PROVIDER.format(name="two"))
    assert set(load_plugins(allow=["second"]).llm_providers) == {"two"}
    assert set(load_plugins(allow=[]).llm_providers) == set()
    assert {"one", "two"} <= set(load_plugins().llm_providers)


def test_allow_list_naming_a_missing_plugin_fails_and_lists_what_is_installed(install):
    install("present", PROVIDER.format(name="here"))
    with pytest.raises(PluginError, match=r"'absent', which is not installed \(installed: .*present"):
        load_plugins(allow=["present", "absent"])


def test_plugin_that_cannot_be_imported_stops_start_up_naming_it(install):
    install("broken", "import a_module_that_does_not_exist\n")
    with pytest.raises(PluginError, match=r"plugin 'broken' \(privex_fake_broken_\w+\) failed to load: .*"
                                          r"a_module_that_does_not_exist"):
        load_plugins()


def test_misspelt_hook_is_caught_by_check_pending(install):
    install("typo", """
        from privex import hookimpl

        @hookimpl
        def privex_llm_provider():
            return []
    """)
    with pytest.raises(PluginError, match=r"privex_llm_provider"):
        load_plugins()


def test_duplicate_names_stop_start_up_naming_both_plugins(install):
    install("alpha", PROVIDER.format(name="same"))
    install("beta", PROVIDER.format(name="same"))
    with pytest.raises(PluginError, match=r"LLM provider 'same' is provided by both plugin 'alpha' and plugin 'beta'"):
        load_plugins()


def test_implementation_without_a_name_is_refused():
    class Nameless:
        @hookimpl
        def privex_chunkers(self):
            return [object()]

    with pytest.raises(PluginError, match=r"privex_chunkers\(\) returned .* without a string `name`"):
        load_plugins(allow=[], extra=[Nameless()])


def test_missing_implementation_names_what_is_installed(install):
    install("qdrantless", PROVIDER.format(name="local"))
    plugins = load_plugins(allow=["qdrantless"])
    with pytest.raises(NotInstalled, match=r"LLM provider 'gpt-9' is not installed \(installed: local\)"):
        plugins.llm_providers["gpt-9"]
    with pytest.raises(NotInstalled, match=r"vector store 'qdrant' is not installed \(installed: none\)"):
        plugins.vector_stores["qdrant"]


def test_registries_are_read_only(install):
    install("ro", PROVIDER.format(name="fixed"))
    registry = load_plugins().llm_providers
    with pytest.raises(TypeError):
        registry["other"] = object()


def test_tracing_logs_hook_calls(install, caplog):
    install("traced", PROVIDER.format(name="seen"))
    with caplog.at_level(logging.INFO, logger="privex.plugins.trace"):
        load_plugins(trace=True)
    assert any("privex_llm_providers [traced]" in record.getMessage() for record in caplog.records)


def test_app_reads_the_allow_list_and_tracing_from_the_environment(install, monkeypatch, base_config):
    from privex.app import create_app

    install("envloaded", PROVIDER.format(name="from-env"))
    install("envskipped", PROVIDER.format(name="not-loaded"))
    monkeypatch.setenv("PRIVEX_LOAD_PLUGINS", "envloaded")
    monkeypatch.setenv("PRIVEX_TRACE_PLUGINS", "1")
    config = {key: value for key, value in base_config.items() if key not in ("LOAD_PLUGINS", "TRACE_PLUGINS")}
    application = create_app(config)
    plugins = application.extensions["privex"].plugins
    assert set(plugins.llm_providers) == {"from-env"} and plugins.trace


def test_broken_plugin_stops_create_app(install, make_app):
    install("explodes", "raise RuntimeError('plugin bug at import')\n")
    with pytest.raises(PluginError, match="explodes"):
        make_app()


def test_cli_and_endpoint_list_installed_plugins(install, make_app):
    module = install("listed", PROVIDER.format(name="listed-provider"), version="0.9.0")
    application = make_app()
    result = application.test_cli_runner().invoke(main, ["plugins"], obj=ScriptInfo(create_app=lambda: application))
    assert result.exit_code == 0, result.output
    assert f"listed  ({module} 0.9.0)" in result.output
    assert "llm_providers: listed-provider" in result.output
    as_json = application.test_cli_runner().invoke(main, ["plugins", "--json"],
                                                   obj=ScriptInfo(create_app=lambda: application))
    assert {"name": "listed", "distribution": module, "version": "0.9.0", "hooks": ["privex_llm_providers"],
            "provides": {"llm_providers": ["listed-provider"]}} in json.loads(as_json.output)
    listed = application.test_client().get("/api/v1/plugins").get_json()
    assert any(plugin["name"] == "listed" and plugin["version"] == "0.9.0" for plugin in listed)


def test_cli_says_so_when_no_plugin_is_installed(make_app):
    application = make_app(LOAD_PLUGINS=[])
    result = application.test_cli_runner().invoke(main, ["plugins"], obj=ScriptInfo(create_app=lambda: application))
    assert result.exit_code == 0 and "No plugins installed." in result.output
