"""The survey over the simulator: the citizen's keys become the result on the ticket, and
each key is stored the moment it is pressed."""

from __future__ import annotations

import wave
from datetime import timedelta

from sqlalchemy import select

from callcenter.simulator.actors import Destination
from callcenter.tickets.models import TicketEvent
from tests.revisit.conftest import CITIZEN, Rig


def citizen(keys: str, key_delay: float = 20) -> Destination:
    """Keys timed after the greeting and the subject (prompts do not take keys)."""
    return Destination(mode="answer", answer_after=2, keys=keys, first_key_after=25,
                       key_delay=key_delay, talk_time=None)


async def test_key_3_puts_the_order_in_the_review_queue_with_the_comment(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, citizen("32"))
    tid = await rig.replied()
    assert await rig.service.schedule_replied() == 1
    assert await rig.round() == 1
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.score, revisit.solved, revisit.result) == \
        ("done", "3", False, "unsatisfied")
    [attempt] = await rig.attempts_of(revisit.id)
    assert attempt.outcome == "answered"
    h = rig.h
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert (ticket["status"], ticket["revisit_result"], ticket["review_conclusion"]) == \
        ("revisited", "unsatisfied", None)  # the office's review queue
    assert ticket["calls"] == [{
        "linkedid": attempt.channel_id, "purpose": "revisit",
        "recording_ref": f"revisit-comment-{attempt.channel_id}.wav",
        "linked_at": ticket["calls"][0]["linked_at"]}]
    async with h.sessionmaker() as session:
        event = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == tid, TicketEvent.action == "revisit"))).one()
    assert (event.reason, event.data) == ("citizen: problem not solved",
                                          {"result": "unsatisfied", "attempts": 1})
    with wave.open(str(rig.monitor / f"{attempt.channel_id}.wav")) as audio:  # MixMonitor
        assert audio.getframerate() == 8000 and audio.getnframes() > 8000 * 40
    # from the review queue the office sends the order back for rework
    reworked = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                            {"reason": "市民不满意：噪音仍在"}, expect=200)
    assert reworked["status"] == "in_progress"


async def test_key_1_and_solved_archives_the_order(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, citizen("11"))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    assert await rig.round() == 1
    ticket = await rig.h.call(rig.h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert (ticket["status"], ticket["revisit_result"]) == ("archived", "satisfied")
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.score, revisit.solved) == ("done", "1", True)


async def test_a_wrong_key_is_asked_again_and_silence_ends_in_a_retry(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, citizen("72", key_delay=12))  # 7 is no answer; then 2
    tid = await rig.replied()
    await rig.service.schedule_replied()
    assert await rig.round() == 1
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.score, revisit.result) == ("done", "2",
                                                               "basically_satisfied")

    rig.sim.add_destination("13900000001", citizen(""))  # answers, never presses a key
    silent = await rig.replied(phone="13900000001")
    await rig.service.schedule_replied()
    assert await rig.round() == 1
    revisit = await rig.revisit_of(silent)
    assert (revisit.state, revisit.last_outcome, revisit.attempts) == ("pending", "dropped", 1)
    assert revisit.due_at == rig.h.clock.now() + timedelta(seconds=1800)


async def test_key_0_declines_and_the_order_is_not_called_again(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, citizen("0"))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    assert await rig.round() == 1
    ticket = await rig.h.call(rig.h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["revisit_result"] == "declined"
    assert await rig.service.schedule_replied() == 0
    assert await rig.round() == 0
