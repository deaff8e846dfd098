"""Settings: one file, environment overrides, secrets files, errors naming file/key/reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO / "config" / "callcenter.toml"

GOOD_SECRETS = {
    "CALLCENTER_AMI__SECRET": "s3cret-from-env",
    "CALLCENTER_AUTH__TOKEN_SECRET": "a-long-random-signing-key-from-env",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callcenter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_repository_file_is_valid_and_gives_the_embedded_defaults() -> None:
    settings = load_settings(REPO_CONFIG, env={})
    assert settings.service.mode == "dev"
    assert settings.service.timezone == "Asia/Shanghai"
    assert settings.database.url == "sqlite+aiosqlite:///var/callcenter.db"
    assert settings.bus.backend == "memory"
    assert settings.web.port == 8080
    assert settings.ami.port == 5038


def test_environment_overrides_nested_keys_with_conversion(tmp_path: Path) -> None:
    settings = load_settings(REPO_CONFIG, env={
        "CALLCENTER_WEB__PORT": "9090",
        "CALLCENTER_BUS__BACKEND": "redis",
        "CALLCENTER_SERVICE__ROLES": '["web"]',
        "CALLCENTER_AMI__SECRET": "from-env",
        "CALLCENTER_SHARED": "/not/a/setting",  # no "__": not a setting, ignored
    })
    assert settings.web.port == 9090
    assert settings.bus.backend == "redis"
    assert settings.service.roles == ["web"]
    assert settings.ami.secret.get_secret_value() == "from-env"


def test_a_secrets_file_supplies_a_secret(tmp_path: Path) -> None:
    secret = tmp_path / "ami_secret"
    secret.write_text("from-a-file\n", encoding="utf-8")
    settings = load_settings(REPO_CONFIG, env={"CALLCENTER_AMI__SECRET_FILE": str(secret)})
    assert settings.ami.secret.get_secret_value() == "from-a-file"


def test_a_missing_secrets_file_names_the_variable_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(REPO_CONFIG, env={"CALLCENTER_AMI__SECRET_FILE": str(tmp_path / "no")})
    assert err.value.key == "ami.secret"
    assert "CALLCENTER_AMI__SECRET_FILE" in err.value.source


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("[web]\nport = 'eighty'\n", "web.port", "valid integer"),
    ("[web]\nprot = 8080\n", "web.prot", "unknown key"),
    ("[service]\ntimezone = 'Mars/Olympus'\n", "service.timezone", "unknown time zone"),
    ("[service]\nroles = ['web', 'coffee']\n", "service.roles.1", "'web', 'telephony'"),
    ("[database]\nurl = 'mysql://x/y'\n", "database.url", "unsupported driver"),
    ("[ami]\nport = 70000\n", "ami.port", "less than or equal"),
    ("[nonsense]\nx = 1\n", "nonsense", "unknown key"),
])
def test_a_bad_value_names_the_file_the_key_and_the_reason(
        tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert err.value.source == str(path)
    assert err.value.key == key
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(REPO_CONFIG, env={"CALLCENTER_WEB__PORT": "http"})
    assert (err.value.source, err.value.key) == ("environment CALLCENTER_WEB__PORT", "web.port")


def test_a_missing_or_broken_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[web\nport = 1"), env={})


def test_production_refuses_the_repository_default_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nmode = "production"\n')
    env = {k: v for k, v in GOOD_SECRETS.items() if "AMI" not in k}
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env)
    assert err.value.key == "ami.secret"
    assert "CALLCENTER_AMI__SECRET" in err.value.reason


def test_production_refuses_a_secret_written_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nmode = "production"\n[ami]\nsecret = "in-the-repo"\n')
    env = {k: v for k, v in GOOD_SECRETS.items() if "AMI" not in k}
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env)
    assert (err.value.source, err.value.key) == (str(path), "ami.secret")


def test_production_refuses_the_default_secret_even_from_the_environment(
        tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nmode = "production"\n')
    default = "dev-only-insecure-token-secret-change-me"
    env = dict(GOOD_SECRETS, CALLCENTER_AUTH__TOKEN_SECRET=default)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env)
    assert err.value.key == "auth.token_secret"
    assert "repository default" in err.value.reason


def test_production_with_postgres_needs_a_password_from_the_environment(
        tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nmode = "production"\n[database]\n'
                           'url = "postgresql+asyncpg://cc:pw@db/cc"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=GOOD_SECRETS)
    assert err.value.key == "database.url" and "password" in err.value.reason

    path = write(tmp_path, '[service]\nmode = "production"\n[database]\n'
                           'url = "postgresql+asyncpg://cc@db/cc"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=GOOD_SECRETS)
    assert (err.value.key, err.value.reason) == (
        "database.password", "secret missing in production mode")

    settings = load_settings(path, env=dict(GOOD_SECRETS, CALLCENTER_DATABASE__PASSWORD="pw!@"))
    assert settings.database.effective_url() == "postgresql+asyncpg://cc:pw%21%40@db/cc"


def test_production_refuses_a_redis_password_written_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nmode = "production"\n[bus]\nbackend = "redis"\n'
                           'redis_url = "redis://:in-the-repo@cache:6379/0"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=GOOD_SECRETS)
    assert (err.value.source, err.value.key) == (str(path), "bus.redis_url")
    assert "bus.redis_password" in err.value.reason
    env = dict(GOOD_SECRETS, CALLCENTER_BUS__REDIS_URL="redis://:from-env@cache:6379/0")
    assert load_settings(path, env=env).bus.backend == "redis"


def test_production_starts_with_secrets_from_environment_and_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("file-held-signing-key", encoding="utf-8")
    path = write(tmp_path, '[service]\nmode = "production"\n')
    settings = load_settings(path, env={
        "CALLCENTER_AMI__SECRET": "env-ami", "CALLCENTER_AUTH__TOKEN_SECRET_FILE": str(token)})
    assert settings.auth.token_secret.get_secret_value() == "file-held-signing-key"
