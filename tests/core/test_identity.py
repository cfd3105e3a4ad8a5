from __future__ import annotations

from dataclasses import dataclass

import pytest

from chatauth import ChatIdentity, ConfigurationError, IdentityMapper, InvalidUIDError, UIDRules


@dataclass
class DjangoishUser:
    pk: int
    username: str
    first_name: str = ""


class FlaskLoginUser:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def get_id(self) -> str:
        return self.user_id


class StarletteUser:
    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def identity(self) -> str:
        return self.username


def display_name(user: DjangoishUser) -> str:
    return user.first_name.title()


def test_default_uid_is_prefixed_primary_key_for_each_framework_shape() -> None:
    mapper = IdentityMapper()
    assert mapper(DjangoishUser(42, "Alice")).uid == "user-42"
    assert mapper(FlaskLoginUser("7")).uid == "user-7"
    assert mapper(StarletteUser("bob")).uid == "user-bob"


def test_attribute_callable_dotted_path_and_chat_uid_override() -> None:
    assert IdentityMapper("username", uid_prefix="")(DjangoishUser(1, "al")).uid == "al"
    assert IdentityMapper(lambda u: f"x{u.pk}")(DjangoishUser(3, "c")).uid == "x3"
    mapper = IdentityMapper(name=f"{__name__}.display_name")
    assert mapper(DjangoishUser(1, "a", "ada")).name == "Ada"
    user = DjangoishUser(9, "z")
    user.chat_uid = "explicit"  # type: ignore[attr-defined]
    assert IdentityMapper()(user).uid == "explicit"


def test_bad_dotted_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        IdentityMapper("no.such.module.func")
    assert info.value.code == "ERROR_CONFIG"


def test_user_without_any_id_is_refused() -> None:
    with pytest.raises(InvalidUIDError):
        IdentityMapper()(object())


RULES = UIDRules(pattern=r"[a-z0-9_-]+", max_length=10, folds_case=True, description="a-z 0-9 _ -")


@pytest.mark.parametrize(
    ("uid", "code"),
    [
        ("", "ERROR_INVALID_UID"),
        ("a b", "ERROR_UID_WITH_SPACE"),
        ("tab\there", "ERROR_UID_WITH_SPACE"),
        ("x" * 11, "ERROR_INVALID_UID"),
        ("Alice", "ERROR_INVALID_UID"),
        ("semi;colon", "ERROR_INVALID_UID"),
    ],
)
def test_uid_rules_refuse_with_codes(uid: str, code: str) -> None:
    with pytest.raises(InvalidUIDError) as info:
        RULES.validate(uid, "demo")
    assert info.value.code == code
    assert info.value.uid == uid


def test_case_folding_provider_names_the_collision() -> None:
    with pytest.raises(InvalidUIDError, match="'alice'"):
        RULES.validate("Alice", "demo")
    assert RULES.validate("alice-1", "demo") == "alice-1"


def test_identity_is_a_value() -> None:
    assert ChatIdentity("a", "A") == ChatIdentity("a", "A")
