"""Softphone provisioning: issuing an agent's credentials writes its PJSIP endpoint into the
include file (digest only, atomically) and reloads res_pjsip over AMI, after which the
simulated Asterisk has the endpoint; an extension change takes the stale one out; the CLI
writes the same file; the simulator answers ``Reload`` as Asterisk does."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.cli import main
from callcenter.queues.config import QueuesConfig
from callcenter.queues.models import Softphone
from callcenter.queues.provisioning import (
    HEADER,
    Phone,
    Provisioning,
    md5_cred,
    provision_once,
    render,
)
from callcenter.queues.service import Skill
from callcenter.settings import DatabaseConfig
from callcenter.simulator.config import REPO_ROOT
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.store.models import Base
from callcenter.telephony.config import AmiConfig
from callcenter.telephony.errors import AmiActionError
from tests.queues.conftest import Rig, make_agent, queues_config

ASTERISK = REPO_ROOT / "config" / "asterisk"


@pytest.fixture
def asterisk_dir(tmp_path: Path) -> Path:
    """A copy of the project's Asterisk config: the simulator reads it, provisioning writes
    the include beside it (never into the repository)."""
    target = tmp_path / "asterisk"
    shutil.copytree(ASTERISK, target)
    return target


@pytest.fixture
def config(asterisk_dir: Path) -> QueuesConfig:
    return queues_config(pjsip_agents_path=str(asterisk_dir / "pjsip_agents.conf"))


def fields(text: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, _, value in pairs}


def expected_file(*phones: Phone) -> str:
    return render(list(phones))


def test_the_digest_is_the_one_asterisk_documents() -> None:
    """configs/samples/pjsip.conf.sample: echo -n "fred:asterisk:mypass" | openssl dgst -md5."""
    assert md5_cred("fred", "asterisk", "mypass") == "43a8d9be3da524f9a59ca0593d7b1b5d"


def test_the_file_has_an_endpoint_auth_and_aor_per_phone() -> None:
    text = render([Phone("1007", 'Li "Lei"; desk', "asterisk", "0" * 32)])
    assert text == HEADER + (
        "\n[1007](agent-template)\nauth = 1007\naors = 1007\n"
        "callerid = \"Li 'Lei', desk\" <1007>\n"
        "[1007](auth-template)\nusername = 1007\nrealm = asterisk\n"
        f"password_digest = MD5:{'0' * 32}\n"
        "[1007](aor-template)\n")


async def test_issued_credentials_are_provisioned_and_reloaded_into_asterisk(
        rig: Rig, asterisk_dir: Path, config: QueuesConfig) -> None:
    rig.sim.config.asterisk_config_dir = asterisk_dir
    log = rig.sim.record_events()
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    agent_user, agent_id = await make_agent(rig.service, extension="1007",
                                            skills=[Skill("hotline", 3)])
    path = Path(config.pjsip_agents_path)
    shipped = (ASTERISK / "pjsip_agents.conf").read_text()
    assert path.read_text() == shipped  # an agent without credentials changes nothing

    issued = await rig.call(supervisor, "POST", f"/agents/{agent_id}/softphone")
    password = issued.pop("password")
    assert issued == {"agent_id": agent_id, "username": "1007", "realm": "asterisk",
                      "reloaded": True}
    digest = hashlib.md5(f"1007:asterisk:{password}".encode()).hexdigest()
    assert len(password) >= 20
    assert path.read_text() == expected_file(
        Phone("1007", agent_user.display_name, "asterisk", digest))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert "1007" in rig.sim.pbx.endpoints and "trunk" in rig.sim.pbx.endpoints
    assert rig.sim.pbx.endpoints["1007"].context == "agents"
    reloads = [fields(text) for name, text in log.events if name == "Reload"]
    assert [(f["Module"], f["Status"]) for f in reloads] == [("res_pjsip.so", "0")]
    async with rig.service.sessionmaker() as session:
        [row] = (await session.scalars(select(Softphone))).all()
        assert (row.agent_id, row.username, row.md5_cred) == (agent_id, "1007", digest)
        assert password not in repr(vars(row))
        audited = (await session.scalars(select(AuditLog).where(
            AuditLog.action == "agent.softphone"))).all()
        assert [(a.user_id, a.object_id, a.fields) for a in audited] == [
            (supervisor.id, str(agent_id), ["username:1007"])]

    await rig.call(supervisor, "POST", "/agents", {
        "user_id": agent_user.id, "extension": "1008",
        "skills": [{"queue": "hotline", "level": 3}]})
    assert path.read_text() == expected_file()  # the digest was for 1007: out until re-issued
    assert "1007" not in rig.sim.pbx.endpoints
    assert len([name for name, _ in log.events if name == "Reload"]) == 2


async def test_provision_once_writes_then_reloads_over_its_own_ami_session(
        rig: Rig, asterisk_dir: Path, config: QueuesConfig, pg_url: str) -> None:
    rig.sim.config.asterisk_config_dir = asterisk_dir
    _, agent_id = await make_agent(rig.service, extension="1009",
                                   skills=[Skill("hotline", 3)])
    await Provisioning(rig.service.sessionmaker, rig.service.clock,
                       config).issue_password(agent_id)
    settings = SimpleNamespace(
        database=DatabaseConfig(url=pg_url), queues=config,
        ami=AmiConfig(port=rig.sim.ami_port, username="callcenter",
                      secret=SecretStr("CHANGE_ME"), action_timeout=5))

    done = await provision_once(settings)
    assert (done.extensions, done.reloaded) == (("1009",), True)
    assert "[1009](auth-template)" in Path(config.pjsip_agents_path).read_text()
    assert "1009" in rig.sim.pbx.endpoints


async def test_the_simulator_answers_reload_as_asterisk_does(rig: Rig) -> None:
    log = rig.sim.record_events()
    await rig.telephony.commands.reload("res_pjsip.so")
    with pytest.raises(AmiActionError, match="No such module"):
        await rig.telephony.commands.reload("res_nothing.so")
    await rig.telephony.commands.reload()
    await asyncio.sleep(0)
    reloads = [text for name, text in log.events if name == "Reload"]
    assert [(f["Privilege"], f["Module"], f["Status"]) for f in map(fields, reloads)] == [
        ("system,all", "res_pjsip.so", "0"), ("system,all", "res_nothing.so", "2"),
        ("system,all", "All", "0")]


def test_the_cli_writes_the_agents_file_without_asterisk(tmp_path: Path) -> None:
    url, target = asyncio.run(_database_with_a_provisioned_agent(tmp_path))
    result = CliRunner().invoke(main, ["agents", "provision", "--no-reload"], env={
        "CALLCENTER_DATABASE__URL": url,
        "CALLCENTER_QUEUES__PJSIP_AGENTS_PATH": str(target)})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"1 softphone(s) written to {target}"
    assert "[1005](agent-template)" in target.read_text()


async def _database_with_a_provisioned_agent(tmp_path: Path) -> tuple[str, Path]:
    from callcenter.clock import SystemClock
    from callcenter.queues.service import AgentService

    url = f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    service = AgentService(sessionmaker, SystemClock(), QueuesConfig())
    _, agent_id = await make_agent(service, extension="1005", skills=[Skill("hotline", 2)])
    target = tmp_path / "etc" / "pjsip_agents.conf"
    provisioning = Provisioning(sessionmaker, SystemClock(),
                                QueuesConfig(pjsip_agents_path=str(target)))
    await provisioning.issue_password(agent_id)
    await engine.dispose()
    return url, target
