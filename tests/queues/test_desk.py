"""The agent desk's choices come from the configuration: the pause reasons an agent may give,
the queues a call may be transferred to, the ticket topics of the taxonomy."""

from __future__ import annotations

import tomllib
from pathlib import Path

from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.queues.service import Skill
from tests.queues.conftest import Rig, make_agent

REPO = Path(__file__).resolve().parents[2]


async def test_the_desk_offers_the_configured_reasons_queues_and_topics(rig: Rig) -> None:
    user, _ = await make_agent(rig.service, extension="1001", skills=[Skill("hotline", 5)])
    desk = await rig.call(user, "GET", "/agents/me/desk")

    config = rig.service.config
    assert desk["pause_reasons"] == config.pause_reasons
    assert desk["queues"] == [{"name": q.name, "language": q.language} for q in config.queue]
    taxonomy = tomllib.loads((REPO / "config" / "taxonomy.toml").read_text())
    expected = [code for top, topic in taxonomy["topics"].items()
                for code in (top, *topic.get("children", {}))]
    assert [t["code"] for t in desk["topics"]] == expected
    first = next(iter(taxonomy["topics"]))
    assert desk["topics"][0] == {"code": first, "label": taxonomy["topics"][first]["label"]}


async def test_only_agents_have_a_desk(rig: Rig) -> None:
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    await rig.call(supervisor, "GET", "/agents/me/desk", expect=403)
