"""Each provider setting is declared once; the registry is the only provider list.

The keys a provider reads, the reader that checks them, the class docstring's table and the
README's key lists all follow the one declaration (``settings_spec``); every registered
provider has a conformance harness.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from chatauth import ConfigurationError
from chatauth.providers import PROVIDERS, BaseProvider, provider_class, registry
from chatauth.providers.cometchat import CometChatProvider
from chatauth.settings import Setting, read_setting
from tests.providers import harnesses

README = (Path(__file__).parents[2] / "README.md").read_text()
CLASSES = registry()


def test_the_registry_finds_every_provider_module_class() -> None:
    assert {
        "chatcamp",
        "chatkitty",
        "cometchat",
        "cometchat_calls",
        "jwt",
        "matrix",
        "sendbird",
        "stream",
        "twilio",
    } <= set(CLASSES)
    assert PROVIDERS["cometchat_calls"] == "chatauth.providers.cometchat:CometChatCallsProvider"
    for name, cls in CLASSES.items():
        assert cls.name == name
        assert provider_class(name.upper()) is cls


def test_every_registered_provider_has_a_conformance_harness() -> None:
    modules = [m.name for m in pkgutil.iter_modules(harnesses.__path__)]
    for name in CLASSES:
        assert name in modules or any(m.startswith(name + "_") for m in modules), name
    for module in modules:
        assert callable(importlib.import_module(f"{harnesses.__name__}.{module}").offline)


def test_the_django_check_hint_lists_the_registry() -> None:
    from chatauth.integrations.django.checks import HINTS

    for name in CLASSES:
        assert f"{name}," in HINTS["chatauth.E001"] or f"{name} or" in HINTS["chatauth.E001"]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_keys_come_from_the_declaration(name: str) -> None:
    cls = CLASSES[name]
    keys = {cls.setting_key(s.name) for s in cls.settings_spec}
    assert cls.settings_keys == keys
    assert all(key.startswith(cls.settings_prefix + "_") for key in keys)
    # The class docstring's table is generated from the same declarations.
    for key in keys:
        assert f"``{key.upper()}``" in (cls.__doc__ or "")


def _readme_keys(prefix: str) -> dict[str, bool]:
    """``KEY -> shown as a secret (bold)`` for every ``PREFIX_*`` key the README names."""
    found: dict[str, bool] = {}
    for match in re.finditer(rf"(\*\*)?`({prefix.upper()}_[A-Z_]+)`", README):
        found[match.group(2)] = found.get(match.group(2), False) or bool(match.group(1))
    return found


@pytest.mark.parametrize("name", sorted({cls.settings_prefix for cls in CLASSES.values()}))
def test_the_readme_lists_exactly_the_declared_keys_secrets_in_bold(name: str) -> None:
    cls = next(c for c in CLASSES.values() if c.settings_prefix == name)
    declared = {cls.setting_key(s.name).upper(): s.secret for s in cls.settings_spec}
    # All of them, or none for a provider the README does not cover (yet): a new provider is
    # one module, and its README row is not a condition for it to work.
    assert _readme_keys(name) in ({}, declared)
    assert any(_readme_keys(c.settings_prefix) for c in CLASSES.values())


def test_the_core_reader_applies_every_part_of_a_declaration() -> None:
    region = Setting("region", "r", default="us", choices=("eu", "in", "us"), lower=True)
    assert read_setting({}, "x_region", region) == "us"
    assert read_setting({"x_region": " "}, "x_region", region) == "us"
    assert read_setting({"x_region": "EU"}, "x_region", region) == "eu"
    for bad in ("mars", 5, ["eu"]):
        with pytest.raises(ConfigurationError) as info:
            read_setting({"x_region": bad}, "x_region", region)
        assert (info.value.setting, info.value.code) == ("X_REGION", "ERROR_CONFIG")
    secret = Setting("key", "k", secret=True, required=True)
    with pytest.raises(ConfigurationError) as info:
        read_setting({"x_key": ""}, "x_key", secret)
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
    sid = Setting("sid", "s", required=True, pattern=r"AC[0-9a-f]{4}", shape="AC + 4 hex")
    assert read_setting({"x_sid": "AC0a1b"}, "x_sid", sid) == "AC0a1b"
    with pytest.raises(ConfigurationError) as info:
        read_setting({"x_sid": "AC0a1b-secret-looking"}, "x_sid", sid)
    assert "secret-looking" not in str(info.value)
    assert str(info.value) == "[ERROR_CONFIG] X_SID must be AC + 4 hex."


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"region": "mars"}, "COMETCHAT_REGION"),  # only the documented regions
        ({"region": "us-east-1"}, "COMETCHAT_REGION"),
        ({"base_url": "ftp://host"}, "COMETCHAT_BASE_URL"),
        ({"app_id": "has space"}, "COMETCHAT_APP_ID"),
        ({"api_key": " "}, "COMETCHAT_API_KEY"),
    ],
)
def test_a_provider_built_in_code_is_checked_by_the_same_reader(
    kwargs: dict[str, str], setting: str
) -> None:
    args = {"app_id": "app1", "api_key": "k", **kwargs}
    with pytest.raises(ConfigurationError) as info:
        CometChatProvider(**args)
    assert info.value.setting == setting


def test_a_subclass_of_a_provider_keeps_its_declarations() -> None:
    class Mine(CometChatProvider):
        name = "mine"

    assert Mine.settings_keys == CometChatProvider.settings_keys
    assert isinstance(
        Mine.from_settings({"cometchat_app_id": "a", "cometchat_api_key": "k"}), BaseProvider
    )
