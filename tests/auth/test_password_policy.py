"""The password policy: length, not blank, not the username, hard to guess (zxcvbn).

It applies wherever a password is set: user creation, password change, the first admin.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from callcenter.auth.passwords import PasswordPolicy, WeakPasswordError
from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_user, test_auth_config, token_for
from callcenter.auth.users import InsecureConfigError, ensure_initial_admin

STRONG_10 = "Xq7#pLm2$v"  # zxcvbn score 3


@pytest.mark.parametrize(("password", "username", "reason"), [
    (STRONG_10[:9], None, "at least 10 characters"),
    (" " * 12, None, "only spaces"),
    ("zhangsan", "zhangsan", "at least 10"),
    ("ZhangSan-rides-a-blue-bike", "zhangsan", "contain the username"),
    ("password123456", None, "too easy to guess (strength 1 of 4, needs 3)"),
    ("qwertyuiop12", None, "too easy to guess"),
])
def test_a_password_breaking_a_rule_is_refused_naming_the_rule(
        password: str, username: str | None, reason: str) -> None:
    with pytest.raises(WeakPasswordError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        PasswordPolicy().check(password, username)


@pytest.mark.parametrize(("password", "username"), [
    (STRONG_10, None),
    ("qiao rides a blue bike", "zhangsan"),
    ("correct horse battery staple", "li"),  # a two-letter name inside a word is no leak
])
def test_a_good_password_passes(password: str, username: str | None) -> None:
    PasswordPolicy().check(password, username)


def test_length_and_score_are_configurable() -> None:
    config = test_auth_config(password_min_length=12, password_min_score=1)
    policy = config.password_policy()
    with pytest.raises(WeakPasswordError, match="at least 12"):
        policy.check(STRONG_10)
    policy.check("password123456")  # score 1 is enough here
    with pytest.raises(WeakPasswordError, match="needs 4"):
        PasswordPolicy(min_score=4).check(STRONG_10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_creating_or_changing_a_user_with_a_weak_password_is_a_422_on_password(
        client, sessionmaker, clock, auth_config) -> None:
    admin = bearer(token_for(await make_user(sessionmaker, clock, role=Role.ADMIN),
                             auth_config, clock))
    created = await client.post("/api/v1/users", headers=admin, json={
        "username": "xu", "password": "password123456", "role": "agent"})
    assert created.status == 422
    error = (await created.json())["error"]
    assert error["field"] == "password" and "too easy to guess" in error["message"]
    agent = await make_user(sessionmaker, clock, role=Role.AGENT, username="hanmeimei")
    for weak, reason in (("hanmeimei-2026-x", "contain the username"), ("", "at least 10")):
        changed = await client.patch(f"/api/v1/users/{agent.id}", headers=admin,
                                     json={"password": weak})
        assert changed.status == 422
        error = (await changed.json())["error"]
        assert error["field"] == "password" and reason in error["message"]
    changed = await client.patch(f"/api/v1/users/{agent.id}", headers=admin,
                                 json={"password": "qiao rides a blue bike"})
    assert changed.status == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_first_admin_password_meets_the_policy(sessionmaker, clock) -> None:
    weak = test_auth_config(initial_admin_password=SecretStr("1234567890ab"))
    with pytest.raises(InsecureConfigError, match="initial_admin_password.*too easy"):
        await ensure_initial_admin(sessionmaker, weak, production=True, clock=clock)
    strict = test_auth_config(password_min_length=20, password_min_score=4)
    generated = await ensure_initial_admin(sessionmaker, strict, production=False, clock=clock)
    assert generated is not None
    strict.password_policy().check(generated, "admin")
