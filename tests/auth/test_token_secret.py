"""No public default secret, in any mode.

Found: in dev mode the token secret defaulted to a string in the repository, so anyone
could forge an admin token for a plain ``callcenter serve``. Now an installation without a
configured secret generates its own on the first start, keeps it in the data directory
(mode 0600) and reuses it; production still refuses a missing, public or short secret.
"""

from __future__ import annotations

import logging
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.auth.config import PUBLISHED_TOKEN_SECRETS, AuthConfig
from callcenter.auth.local_secret import load_or_create_secret
from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, bearer, make_user, token_for
from callcenter.auth.users import InsecureConfigError, check_production_config
from callcenter.settings import ConfigError, load_settings

(OLD_DEFAULT,) = PUBLISHED_TOKEN_SECRETS


def dev_settings(data_dir: Path, **env: str):
    return load_settings(None, env={
        "CALLCENTER_DATABASE__URL": f"sqlite+aiosqlite:///{data_dir / 'callcenter.db'}",
        **{f"CALLCENTER_{k}": v for k, v in env.items()}})


def test_without_a_configured_secret_an_installation_generates_and_keeps_its_own(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    first = dev_settings(tmp_path / "one").auth.token_secret.get_secret_value()
    kept = tmp_path / "one" / "token_secret"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_text().strip() == first and len(first) >= 64
    assert first not in PUBLISHED_TOKEN_SECRETS
    assert dev_settings(tmp_path / "one").auth.token_secret.get_secret_value() == first
    other = dev_settings(tmp_path / "two").auth.token_secret.get_secret_value()
    assert other != first  # each installation its own
    messages = [r.getMessage() for r in caplog.records if "token_secret" in r.getMessage()]
    assert [m.split()[0] for m in messages] == ["auth.token_secret_generated",
                                               "auth.token_secret_reused",
                                               "auth.token_secret_generated"]
    assert all(first not in m and other not in m for m in caplog.messages)


def test_a_configured_secret_is_used_and_nothing_is_generated(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, AUTH__TOKEN_SECRET="operator-chosen-" + "k" * 32)
    assert settings.auth.token_secret.get_secret_value() == "operator-chosen-" + "k" * 32
    assert not (tmp_path / "token_secret").exists()


def test_the_data_directory_is_the_sqlite_databases_folder(tmp_path: Path) -> None:
    assert dev_settings(tmp_path / "data").data_dir == tmp_path / "data"
    postgres = load_settings(None, env={
        "CALLCENTER_DATABASE__URL": "postgresql+asyncpg://cc@127.0.0.1/cc",
        "CALLCENTER_AUTH__TOKEN_SECRET": "x" * 40})
    assert postgres.data_dir == Path("var")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_token_forged_with_the_old_public_default_is_refused(
        tmp_path: Path, sessionmaker, clock) -> None:
    config = dev_settings(tmp_path).auth
    admin = await make_user(sessionmaker, clock, role=Role.ADMIN)
    forged = jwt.encode({"sub": str(admin.id), "name": admin.username, "role": "admin",
                         "unit": None, "iss": "callcenter", "iat": clock.now().timestamp(),
                         "exp": int((clock.now() + timedelta(days=1)).timestamp()), "jti": "x"},
                        OLD_DEFAULT, algorithm="HS256")
    async with TestClient(TestServer(bare_app(sessionmaker, clock, config=config))) as client:
        assert (await client.get("/api/v1/users", headers=bearer(forged))).status == 401
        genuine = bearer(token_for(admin, config, clock))
        assert (await client.get("/api/v1/users", headers=genuine)).status == 200


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "var" / "token_secret"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: load_or_create_secret(path), range(16)))
    assert len({secret for secret, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    assert [p.name for p in path.parent.iterdir()] == ["token_secret"]  # no leftovers


def test_a_readable_secret_file_is_tightened_and_an_empty_one_refused(tmp_path: Path) -> None:
    kept = tmp_path / "token_secret"
    kept.write_text("s" * 40 + "\n")
    kept.chmod(0o644)
    assert dev_settings(tmp_path).auth.token_secret.get_secret_value() == "s" * 40
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    kept.write_text("\n")
    with pytest.raises(ConfigError) as err:
        dev_settings(tmp_path)
    assert err.value.key == "auth.token_secret" and str(kept) in err.value.reason


def test_production_refuses_a_missing_public_or_short_secret(tmp_path: Path) -> None:
    production = tmp_path / "production.toml"
    production.write_text('[service]\nmode = "production"\n')
    env = {"CALLCENTER_AMI__SECRET": "ami-secret-from-env",
           "CALLCENTER_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}",
           "CALLCENTER_AUTH__INITIAL_ADMIN_PASSWORD": "an initial admin passphrase"}
    for secret, reason in ((None, "missing"), (OLD_DEFAULT, "repository default")):
        with pytest.raises(ConfigError) as err:
            load_settings(production, env=env if secret is None
                          else {**env, "CALLCENTER_AUTH__TOKEN_SECRET": secret})
        assert err.value.key == "auth.token_secret" and reason in err.value.reason
    assert not (tmp_path / "token_secret").exists()  # production never makes its own
    for config in (AuthConfig(), AuthConfig(token_secret="short-secret")):
        with pytest.raises(InsecureConfigError):
            check_production_config(config)
    check_production_config(AuthConfig(token_secret="r" * 32))
