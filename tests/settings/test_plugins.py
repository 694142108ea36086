"""Third-party sources: found through the ``n3xt_creds.sources`` entry-point group.

``plugin_pkg/`` holds a tiny package *as installed*: its module plus the
``.dist-info`` directory pip would write, declaring the entry point. Putting that
directory on ``sys.path`` is all installation is, so importlib.metadata finds it
exactly as it would find a pip-installed plugin.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from n3xt_creds import ConfigError
from n3xt_creds.settings import SourceRegistry, build_source, load_settings

PLUGIN_DIR = Path(__file__).parent / "plugin_pkg"

SETTINGS = """
[default]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"

[default.sources.jsonfile]
path = "{path}"
"""


@pytest.fixture
def plugin_installed(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))


def test_entry_point_plugin_is_listed_and_selectable_by_variable(
    plugin_installed, write_settings, tmp_path
):
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"client_id": "plug-id", "client_secret": "plug-secret"}))
    path = write_settings(SETTINGS.format(path=creds))
    registry = SourceRegistry()
    assert "jsonfile" in registry.names
    assert registry.origin("jsonfile") == "package n3xt-creds-testplugin"
    settings = load_settings(path, environ={"N3XT_CREDS_SOURCE": "jsonfile"}, registry=registry)
    source = build_source(settings, registry=registry)
    assert type(source).__name__ == "JsonFileSource"
    assert source.get_credentials().client_id == "plug-id"


def test_plugin_table_gets_the_same_validation(plugin_installed, write_settings):
    path = write_settings(SETTINGS.format(path="/x") + 'id_kye = "cid"\n')
    settings = load_settings(path, environ={"N3XT_CREDS_SOURCE": "jsonfile"})
    with pytest.raises(ConfigError) as caught:
        build_source(settings)
    assert str(caught.value).startswith(
        f"{path} [development]: `sources.jsonfile.id_kye` is not a known setting"
    )
    assert "did you mean `id_key`" in str(caught.value)


def test_plugin_names_are_suggested(plugin_installed, write_settings):
    path = write_settings(SETTINGS.format(path="/x"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"N3XT_CREDS_SOURCE": "jsonfiel"})
    assert "did you mean `jsonfile`?" in str(caught.value)
    assert "(set by environment variable N3XT_CREDS_SOURCE)" in str(caught.value)


def test_without_the_plugin_its_table_is_unknown(write_settings):
    path = write_settings(SETTINGS.format(path="/x"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, registry=SourceRegistry(discover=False))
    assert "There is no source named 'jsonfile'" in str(caught.value)


def test_registry_accepts_direct_factories(write_settings):
    built = []

    def factory(options):
        built.append(options.get_str("path"))
        options.finish()
        return type("Direct", (), {"get_credentials": lambda self: None})()

    registry = SourceRegistry({"jsonfile": factory}, discover=False)
    path = write_settings(SETTINGS.format(path="/y"))
    settings = load_settings(path, environ={"N3XT_CREDS_SOURCE": "jsonfile"}, registry=registry)
    build_source(settings, registry=registry)
    assert built == ["/y"]


def test_a_failing_factory_becomes_a_config_error_without_its_message(write_settings):
    def factory(options):
        raise RuntimeError("leaky detail hunter2")

    registry = SourceRegistry({"broken": factory}, discover=False)
    path = write_settings('[default]\ntoken_url = "https://a.n3xt.io/t"\nsource = "broken"\n')
    settings = load_settings(path, environ={}, registry=registry)
    with pytest.raises(ConfigError) as caught:
        build_source(settings, registry=registry)
    assert "source 'broken' (direct) failed to build from `sources.broken`: RuntimeError" in str(
        caught.value
    )
    assert "hunter2" not in str(caught.value)


def test_builtin_names_cannot_be_hijacked(caplog):
    from n3xt_creds.settings._registry import _Entry

    registry = SourceRegistry(discover=False)
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        registry._add(_Entry("env", "evil:from_options", "package evil"))
    assert registry.factory("env").__module__ == "n3xt_creds.sources.env"
    assert "belongs to a built-in source" in caplog.text
    with pytest.raises(ConfigError):
        SourceRegistry({"chain": lambda options: None}, discover=False)
