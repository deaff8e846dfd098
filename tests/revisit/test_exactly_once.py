"""Exactly once: two dialers on one database never dial a revisit twice, and a dialer that
dies after its Originate is not followed by a second dial of the same revisit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from callcenter.revisit.dialer import Dialer
from callcenter.revisit.models import Revisit, RevisitAttempt
from callcenter.simulator.actors import Destination
from tests.revisit.conftest import CITIZEN, Rig, start_door, telephony_for


def satisfied_citizen() -> Destination:
    return Destination(mode="answer", answer_after=1, keys="11", first_key_after=25,
                       key_delay=20, talk_time=None)


async def test_two_dialers_on_one_database_never_double_dial(rig: Rig) -> None:
    other_door = telephony_for(rig.sim, pbx="sim-revisit-2")
    other = Dialer(rig.service.__class__(rig.h.sessionmaker, rig.h.clock, rig.config,
                                         rig.h.service), other_door.commands, rig.config)
    other_door.add_listener(other.on_event)
    await start_door(other_door)
    try:
        phones = [f"1390000020{i}" for i in range(10)]
        for phone in phones:
            rig.sim.add_destination(phone, satisfied_citizen())
            await rig.replied(phone=phone)
        assert await rig.service.schedule_replied() == 10
        peak = 0

        def count(*_: object) -> None:
            nonlocal peak
            peak = max(peak, sum(1 for c in rig.sim.pbx.channels.values()
                                 if c.name.startswith("PJSIP/trunk") and not c.dead))

        rig.sim.add_listener(count)
        for _ in range(12):  # both claim at the same moment, round after round
            await asyncio.gather(rig.dialer.round(), other.round())
            await asyncio.sleep(0.3)
        tasks = [t for _, t in [*rig.dialer.calls.values(), *other.calls.values()]]
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert rig.dialer.dials + other.dials == 10
        assert peak <= rig.config.campaign.max_lines
        async with rig.h.sessionmaker() as session:
            per_revisit = (await session.execute(select(
                RevisitAttempt.revisit_id, func.count()).group_by(
                RevisitAttempt.revisit_id))).all()
            states = (await session.scalars(select(Revisit.result))).all()
        assert sorted(n for _, n in per_revisit) == [1] * 10
        assert states == ["satisfied"] * 10
    finally:
        await other.close()
        await other_door.stop()


async def test_concurrent_claims_from_two_services_never_share_a_revisit(rig: Rig) -> None:
    for i in range(10):
        await rig.replied(phone=f"1390000030{i}")
    await rig.service.schedule_replied()
    campaign = await rig.service.default_campaign()
    await rig.service.save_campaign("default", rig.config.campaign.model_copy(
        update={"max_lines": 100}), campaign.id)
    second = rig.service.__class__(rig.h.sessionmaker, rig.h.clock, rig.config, rig.h.service)
    claims = await asyncio.gather(*[(rig.service if i % 2 else second).claim(campaign.id, 3)
                                    for i in range(8)])
    taken = [dial.revisit_id for claim in claims for dial in claim]
    assert len(taken) == len(set(taken))  # no revisit claimed twice
    tokens = {dial.token for claim in claims for dial in claim}
    assert len(tokens) == len([c for c in claims if c])
    rest = await rig.service.claim(campaign.id, 100)
    assert sorted(taken + [dial.revisit_id for dial in rest]) == sorted(range(1, 11))
    async with rig.h.sessionmaker() as session:  # each claim stored its one attempt
        attempts = (await session.execute(select(
            RevisitAttempt.revisit_id, RevisitAttempt.channel_id, RevisitAttempt.outcome))).all()
    dials = [dial for claim in [*claims, rest] for dial in claim]
    assert sorted(attempts) == sorted((d.revisit_id, d.channel_id, "dialing") for d in dials)


async def test_a_dialer_killed_after_the_originate_is_not_followed_by_a_second_dial(
        rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, satisfied_citizen())
    tid = await rig.replied()
    await rig.service.schedule_replied()
    await rig.dialer.round()
    await rig.sim.wait_until(lambda: any(c.name.startswith("PJSIP/trunk") and c.state == 6
                                         for c in rig.sim.pbx.channels.values()), 10)
    revisit = await rig.revisit_of(tid)
    assert revisit.state in ("dialing", "answered")
    await rig.dialer.close()  # killed: no result of its own, its lease is no longer renewed

    door = telephony_for(rig.sim, pbx="sim-revisit-restarted")
    restarted = Dialer(rig.service.__class__(rig.h.sessionmaker, rig.h.clock, rig.config,
                                             rig.h.service), door.commands, rig.config)
    await start_door(door)
    try:
        await restarted.round()
        rig.h.clock.advance(timedelta(seconds=rig.config.lease_seconds + 1))  # lease over
        await restarted.round()  # the call is still up in Asterisk: left alone
        assert restarted.dials == 0
        await rig.sim.wait_idle(30)  # the survey (served by the door) finishes the call
        await restarted.round()
        assert restarted.dials == 0
        revisit = await rig.revisit_of(tid)
        assert (revisit.state, revisit.result) == ("done", "satisfied")
        assert len(await rig.attempts_of(revisit.id)) == 1
    finally:
        await restarted.close()
        await door.stop()


async def test_a_claim_whose_dialer_died_before_the_originate_is_retried_after_its_lease(
        rig: Rig) -> None:
    """The claim stored the attempt; nobody can tell whether the phone rang, so it counts
    as a ``lost`` attempt and the next one is dialed once the lease has run out."""
    rig.sim.add_destination(CITIZEN, satisfied_citizen())
    tid = await rig.replied()
    await rig.service.schedule_replied()
    campaign = await rig.service.default_campaign()
    [dial] = await rig.service.claim(campaign.id, 5)  # then the dialer died
    assert await rig.round() == 0  # claimed by someone alive, as far as anyone knows
    rig.h.clock.advance(timedelta(seconds=rig.config.lease_seconds - 1))
    assert await rig.round() == 0  # the lease has not run out yet
    rig.h.clock.advance(timedelta(seconds=2))
    assert await rig.round() == 0  # the lost attempt is recorded, its retry scheduled
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.attempts, revisit.last_outcome) == ("pending", 1, "lost")
    # the old claim is dead: its outcome, if it ever came, is not recorded
    assert await rig.service.dial_outcome(dial.channel_id, dial.token, "answered") is None
    rig.h.clock.advance(timedelta(seconds=rig.config.campaign.retry_failed_seconds))
    assert await rig.round() == 1
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.result, revisit.attempts) == ("done", "satisfied", 2)
    attempts = await rig.attempts_of(revisit.id)
    assert [(a.channel_id, a.outcome) for a in attempts][0] == (dial.channel_id, "lost")
    assert attempts[1].outcome == "answered"
