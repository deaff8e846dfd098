"""The dialer against the simulator under a frozen clock: retries at the configured times,
nothing outside the window, the do-not-call list and opt-outs, the line limit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.revisit.dialer import Dialer
from callcenter.simulator.actors import Destination
from tests.revisit.conftest import CITIZEN, Rig, local


async def test_busy_and_no_answer_are_retried_at_their_own_times(rig: Rig) -> None:
    clock = rig.h.clock
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=1))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    start = clock.now()
    assert await rig.round() == 1
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.last_outcome, revisit.attempts) == ("pending", "busy", 1)
    assert revisit.due_at == start + timedelta(seconds=600)  # busy: soon

    clock.advance(timedelta(seconds=599))
    assert await rig.round() == 0
    clock.advance(timedelta(seconds=1))
    rig.sim.add_destination(CITIZEN, Destination(mode="noanswer"))
    assert await rig.round() == 1
    revisit = await rig.revisit_of(tid)
    assert (revisit.last_outcome, revisit.attempts) == ("no_answer", 2)
    assert revisit.due_at == clock.now() + timedelta(seconds=7200)  # no answer: later

    clock.advance(timedelta(seconds=7199))
    assert await rig.round() == 0
    clock.advance(timedelta(seconds=1))
    assert await rig.round() == 1  # the last attempt: unreachable is the result
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.result, revisit.attempts) == ("done", "unreachable", 3)
    assert [a.outcome for a in await rig.attempts_of(revisit.id)] == \
        ["busy", "no_answer", "no_answer"]
    ticket = await rig.h.call(rig.h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert (ticket["status"], ticket["revisit_result"]) == ("revisited", "unreachable")
    clock.advance(timedelta(days=1))
    assert await rig.round() == 0


async def test_no_call_outside_the_window_or_on_a_day_off(rig: Rig) -> None:
    clock = rig.h.clock
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=1))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    for moment in (local(2026, 11, 23, 20, 0), local(2026, 11, 24, 8, 59),
                   local(2026, 11, 28, 10, 0), local(2026, 11, 29, 15, 0)):
        clock.set(moment)  # Monday 20:00, Tuesday 08:59, Saturday and Sunday (days off)
        assert await rig.round() == 0, moment
    clock.set(local(2027, 1, 1, 10, 0))  # New Year's Day, a Friday: a public holiday
    assert await rig.round() == 0
    clock.set(local(2026, 11, 24, 9, 0))
    assert await rig.round() == 1
    assert (await rig.revisit_of(tid)).attempts == 1


async def test_paused_campaign_does_not_dial_until_resumed(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=1))
    await rig.replied()
    await rig.service.schedule_replied()
    campaign = await rig.service.default_campaign()
    await rig.service.set_paused(campaign.id, True)
    assert await rig.round() == 0
    await rig.service.set_paused(campaign.id, False)
    assert await rig.round() == 1


async def test_do_not_call_and_opt_out_are_honoured(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=1))
    listed = await rig.replied()
    await rig.service.add_do_not_call("138-1234-5678", "市民要求", None)
    other = "13900000002"
    rig.sim.add_destination(other, Destination(mode="busy", answer_after=1))
    opted = await rig.replied(phone=other)
    await rig.service.schedule_replied()
    await rig.service.opt_out(opted, None)
    assert await rig.round() == 0
    assert ((await rig.revisit_of(listed)).state, (await rig.revisit_of(listed)).result) == \
        ("canceled", "do_not_call")
    assert (await rig.revisit_of(opted)).result == "opted_out"
    assert await rig.attempts_of((await rig.revisit_of(listed)).id) == []


async def test_an_opt_out_during_a_call_stops_its_retries(rig: Rig) -> None:
    """The citizen opts out while the first attempt rings (the revisit is not pending, so
    nothing is canceled yet): the retry's claim reads the opt-out and ends the revisit."""
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=5))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    await rig.dialer.round()
    await rig.sim.wait_until(lambda: any(c.name.startswith("PJSIP/trunk")
                                         for c in rig.sim.pbx.channels.values()), 10)
    await rig.service.opt_out(tid, None)
    await asyncio.wait_for(asyncio.gather(*[t for _, t in rig.dialer.calls.values()]), 30)
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.attempts) == ("pending", 1)  # the busy retry
    rig.h.clock.advance(timedelta(seconds=rig.config.campaign.retry_busy_seconds))
    assert await rig.round() == 0
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.result, revisit.attempts) == ("canceled", "opted_out", 1)


async def test_lines_are_kept_busy_without_exceeding_the_limit(rig: Rig) -> None:
    """Six answered calls on four lines: four start at once, the rest once lines are free."""
    pbx = rig.sim.pbx
    peak = 0

    def count(*_: object) -> None:
        nonlocal peak
        live = sum(1 for c in pbx.channels.values()
                   if c.name.startswith("PJSIP/trunk") and not c.dead)
        peak = max(peak, live)

    rig.sim.add_listener(count)
    phones = [f"1390000010{i}" for i in range(6)]
    for phone in phones:
        rig.sim.add_destination(phone, Destination(mode="answer", answer_after=1, keys="11",
                                                   first_key_after=25, key_delay=20,
                                                   talk_time=None))
        await rig.replied(phone=phone)
    assert await rig.service.schedule_replied() == 6
    assert await rig.round() == 4
    assert await rig.round() == 2
    assert peak == 4
    progress = await rig.service.progress((await rig.service.default_campaign()).id)
    assert (progress.pending, progress.dialing, progress.satisfied, progress.reached) == \
        (0, 0, 6, 6)


async def test_a_line_is_refilled_when_its_call_ends_not_at_the_next_poll(rig: Rig) -> None:
    """The running loop, one line, polls a minute apart: each unanswered call's end starts
    the next call at once."""
    campaign = await rig.service.default_campaign()
    await rig.service.save_campaign("default", rig.config.campaign.model_copy(
        update={"max_lines": 1}), campaign.id)
    phones = [f"1390000040{i}" for i in range(3)]
    tickets = []
    for phone in phones:
        rig.sim.add_destination(phone, Destination(mode="busy", answer_after=1))
        tickets.append(await rig.replied(phone=phone))
    live, peak = set(), 0

    def count(name: str, _flag: int, text: str) -> None:
        nonlocal peak
        channel = next((line[10:] for line in text.split("\r\n")
                        if line.startswith("Uniqueid: rv-")), None)
        if channel and name == "Newchannel":
            live.add(channel)
            peak = max(peak, len(live))
        elif channel and name == "Hangup":
            live.discard(channel)

    rig.sim.add_listener(count)
    dialer = Dialer(rig.service, rig.telephony.commands, rig.config.model_copy(
        update={"poll_seconds": 60, "housekeeping_seconds": 60}))
    rig.telephony.add_listener(dialer.on_event)
    stop = asyncio.Event()
    running = asyncio.create_task(dialer.run(stop))
    try:
        await rig.sim.wait_until(lambda: dialer.dials == 3 and not live, 10)
        await asyncio.gather(*[task for _, task in dialer.calls.values()])
    finally:
        stop.set()
        await running
    assert peak == 1
    attempts = [await rig.attempts_of((await rig.revisit_of(t)).id) for t in tickets]
    assert [[a.outcome for a in per] for per in attempts] == [["busy"]] * 3
