"""Settings come from the environment, and README documents every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from privex.config import SETTINGS, settings_from_env

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text()
    missing = [setting.env for setting in SETTINGS if f"`{setting.env}`" not in readme]
    assert not missing, f"settings missing from README.md's configuration table: {missing}"


def test_settings_are_parsed_from_the_environment():
    config = settings_from_env({"PRIVEX_LOAD_PLUGINS": "a, b,", "PRIVEX_TRACE_PLUGINS": "yes",
                                "PRIVEX_MAX_UPLOAD_MB": "7", "DATABASE_URL": "postgresql://db/x"})
    assert config["LOAD_PLUGINS"] == ["a", "b"]
    assert config["TRACE_PLUGINS"] is True
    assert config["MAX_UPLOAD_MB"] == 7
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql://db/x"


def test_unset_settings_fall_back_to_defaults_or_stay_unset():
    config = settings_from_env({})
    assert "SQLALCHEMY_DATABASE_URI" not in config and "REDIS_URL" not in config
    assert "LOAD_PLUGINS" not in config  # unset: every installed plugin loads
    assert config["TRACE_PLUGINS"] is False and config["PORT"] == 5000


def test_an_empty_allow_list_loads_no_plugin_but_an_empty_rate_limit_is_no_limit():
    config = settings_from_env({"PRIVEX_LOAD_PLUGINS": "", "PRIVEX_RATELIMIT_DEFAULT": " "})
    assert config["LOAD_PLUGINS"] == []
    assert "RATELIMIT_DEFAULT" not in config


def test_a_default_rate_limit_applies_to_every_route(make_app):
    try:
        limited = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
        assert [limited.get("/api/v1/plugins").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        # flask-limiter keeps one configuration per process (one app in production), and keeps default limits
        # once set: put the suite's (none) back.
        from privex.extensions import limiter

        limiter.limit_manager.set_default_limits([])


def test_running_from_the_checkout_keeps_local_state_in_its_instance_folder():
    # `make run` (an editable install); an installed wheel uses the user's data folder (tests/test_wheel.py).
    from privex.app import default_instance_path

    assert default_instance_path() == README.parent / "instance"


def test_with_urls_set_nothing_embedded_is_started(app):
    instance = Path(app.instance_path)
    assert not (instance / "pgdata").exists() and not (instance / "redis").exists()
    assert "EMBEDDED_DATABASE" not in app.config and "EMBEDDED_REDIS" not in app.config


def test_unix_socket_redis_urls_are_spelled_for_each_client():
    from privex.embedded import celery_url, limiter_url

    assert celery_url("unix:///run/r.sock?db=3") == "redis+socket:///run/r.sock?virtual_host=3"
    assert limiter_url("unix:///run/r.sock?db=3") == "redis+unix:///run/r.sock?db=3"
    assert limiter_url("unix:///run/r.sock") == "redis+unix:///run/r.sock?db=0"
    assert celery_url("redis://h:6379/2") == limiter_url("redis://h:6379/2") == "redis://h:6379/2"


def test_process_counts_follow_the_cores_unless_set(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    config = settings_from_env({})
    assert config["WEB_WORKERS"] == 6 and config["WORKER_CONCURRENCY"] == 6
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert settings_from_env({})["WEB_WORKERS"] == 2  # one long stream never holds the only process
    assert settings_from_env({"PRIVEX_WEB_WORKERS": "3", "PRIVEX_WORKER_CONCURRENCY": "AUTO"}) == {
        **settings_from_env({}), "WEB_WORKERS": 3, "WORKER_CONCURRENCY": 2}
    with pytest.raises(ValueError, match="whole number from 1, or auto"):
        settings_from_env({"PRIVEX_WEB_WORKERS": "0"})
