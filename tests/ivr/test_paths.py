"""Each path of the shipped flows through the simulated Asterisk over real TCP: the queue or
outcome reached, the prompts played in order, the channel variables set, the call-log row."""

from __future__ import annotations

import pytest

from callcenter.knowledge.service import save_article
from callcenter.simulator.actors import Agent
from tests.ivr.rig import Rig

WELCOME = ["zh/hotline-welcome", "zh/english-option"]


@pytest.fixture(autouse=True)
async def agents(rig: Rig) -> None:
    rig.sim.add_agent("PJSIP/1001", Agent(answer_after=0.5), queues=["hotline"], login=True)
    rig.sim.add_agent("PJSIP/1002", Agent(answer_after=0.5), queues=["hotline-en"],
                      login=True)


async def test_default_flow_greets_and_queues_to_the_hotline(rig: Rig) -> None:
    call = rig.call()
    rows = await rig.ended(call)
    assert rig.watch.played(call) == WELCOME
    assert rig.watch.var(call, "IVR_QUEUE") == "hotline"
    assert rig.watch.var(call, "IVR_QUEUE_SUFFIX") is None  # hotline itself
    assert rig.watch.var(call, "IVR_OUTCOME") == "queue"
    assert rig.watch.var(call, "IVR_PROMPTS") == ",".join(WELCOME)
    row = rows[call.linkedid]
    assert row.queue == "hotline" and row.disposition == "answered"
    assert row.ivr_path == "agi:ivr>welcome>english_offer>check>agent"


async def test_nine_during_the_welcome_switches_to_english_and_its_queue(rig: Rig) -> None:
    call = rig.call(keys="9")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == ["zh/hotline-welcome"]  # interrupted by the 9
    assert rig.watch.var(call, "IVR_LANGUAGE") == "en"
    assert rig.watch.var(call, "IVR_QUEUE") == "hotline-en"
    assert rig.watch.var(call, "IVR_QUEUE_SUFFIX") == "-en"
    row = rows[call.linkedid]
    assert row.queue == "hotline-en" and row.disposition == "answered"
    assert row.ivr_path == "agi:ivr>keys:9>welcome:9>english>check>agent"


async def test_menu_one_is_a_new_request_for_the_hotline_queue(rig: Rig) -> None:
    rig.use("menu")
    call = rig.call(keys="1")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*WELCOME, "zh/main-menu", "zh/connecting"]
    assert rig.watch.var(call, "IVR_TOPIC") == "new_request"
    assert rig.watch.var(call, "IVR_QUEUE") == "hotline"
    row = rows[call.linkedid]
    assert row.queue == "hotline" and row.disposition == "answered"
    assert row.ivr_path == "agi:ivr>keys:1>welcome>english_offer>check>main:1>new_request"


async def test_menu_in_english_reaches_the_english_queue(rig: Rig) -> None:
    rig.use("menu")
    call = rig.call(keys="90")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == ["zh/hotline-welcome", "en/main-menu", "en/connecting"]
    assert rows[call.linkedid].queue == "hotline-en"


async def test_invalid_keys_are_retried_then_go_to_an_agent(rig: Rig) -> None:
    rig.use("menu")
    call = rig.call(keys="777")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*WELCOME] + ["zh/main-menu", "zh/invalid-key"] * 3 + [
        "zh/connecting"]
    row = rows[call.linkedid]
    assert row.queue == "hotline" and row.disposition == "answered"
    assert row.ivr_path.endswith(">main:7:7:7>agent")


async def test_silence_is_retried_then_goes_to_an_agent(rig: Rig) -> None:
    rig.use("menu")
    call = rig.call()
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*WELCOME, "zh/main-menu", "zh/main-menu",
                                      "zh/main-menu", "zh/connecting"]
    assert rows[call.linkedid].queue == "hotline"
    assert rows[call.linkedid].ivr_path.endswith(">check>main>agent")


async def test_office_hours_then_silence_ends_the_call_in_the_ivr(rig: Rig) -> None:
    rig.use("menu")
    call = rig.call(keys="3")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*WELCOME, "zh/main-menu", "zh/office-hours",
                                      "zh/more-menu", "zh/goodbye"]
    assert rig.watch.var(call, "IVR_OUTCOME") == "hangup"
    row = rows[call.linkedid]
    assert row.queue is None and row.disposition == "ivr_hangup"
    assert row.ivr_node == "bye"


async def test_a_standard_answer_is_read_from_the_knowledge_base(rig: Rig) -> None:
    async with rig.sessionmaker() as session, session.begin():
        await save_article(session, rig.clock, None, title="办公时间",
                           body="承办单位工作日上午九点到下午六点办公。", topic=None)
    rig.use("menu")
    call = rig.call(keys="3")
    await rig.ended(call)
    answer = await rig.app.library.sentence("承办单位工作日上午九点到下午六点办公。", "zh")
    assert answer.startswith("zh/dynamic/")
    assert rig.watch.played(call) == [*WELCOME, "zh/main-menu", answer, "zh/more-menu",
                                      "zh/goodbye"]
