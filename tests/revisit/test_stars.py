"""1-5 stars on a ``stars`` campaign: the survey asks for stars over the simulator's
FastAGI, the stars are kept on the revisit and on the ticket's revisit record, and the
configured mapping (5-4 satisfied, 3 basically satisfied, 2-1 unsatisfied) gives the result,
on the keypad and in a text reply."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from callcenter.revisit.config import CampaignSettings, RevisitConfig
from callcenter.revisit.models import RevisitMessage
from callcenter.revisit.service import star_score
from callcenter.simulator.actors import Destination
from callcenter.tickets.models import TicketEvent, TicketRevisit
from tests.revisit.conftest import CITIZEN, Rig
from tests.tickets.conftest import Hotline


@pytest.fixture
def revisit_config(revisit_config: RevisitConfig) -> RevisitConfig:
    campaign = revisit_config.campaign.model_copy(update={"scale": "stars"})
    return revisit_config.model_copy(update={"campaign": campaign})


def citizen(keys: str, key_delay: float = 20) -> Destination:
    """Keys timed after the greeting and the subject (as in test_survey)."""
    return Destination(mode="answer", answer_after=2, keys=keys, first_key_after=25,
                       key_delay=key_delay, talk_time=None)


async def ticket_revisits(h: Hotline, tid: int) -> list[tuple[str, int | None]]:
    async with h.sessionmaker() as session:
        rows = (await session.scalars(select(TicketRevisit).where(
            TicketRevisit.ticket_id == tid).order_by(TicketRevisit.id))).all()
    return [(r.result, r.stars) for r in rows]


def test_the_default_mapping_on_both_sides_of_each_boundary() -> None:
    settings = CampaignSettings()
    # result codes: 1 satisfied, 2 basically satisfied, 3 unsatisfied
    assert {stars: star_score(settings, stars) for stars in range(1, 6)} == \
        {5: "1", 4: "1", 3: "2", 2: "3", 1: "3"}


def test_the_mapping_is_configured_per_campaign_and_must_cover_1_to_5() -> None:
    strict = CampaignSettings(star_results={5: "satisfied", 4: "basically_satisfied",
                                            3: "unsatisfied", 2: "unsatisfied",
                                            1: "unsatisfied"})
    assert [star_score(strict, s) for s in (5, 4, 3)] == ["1", "2", "3"]
    stored = CampaignSettings(**strict.model_dump(mode="json"))  # as kept in the database
    assert stored.star_results == strict.star_results
    for wrong in ({5: "satisfied"}, {**strict.star_results, 6: "satisfied"},
                  {**strict.star_results, 3: "declined"}):
        with pytest.raises(ValidationError, match="star_results"):
            CampaignSettings(star_results=wrong)
    with pytest.raises(ValidationError, match="scale"):
        CampaignSettings(scale="ten")


async def test_stars_are_asked_kept_and_mapped_over_fastagi(rig: Rig) -> None:
    """4 | 3 and 3 | 2: both sides of both boundaries, three citizens called at once."""
    numbers = {"4": CITIZEN, "3": "13900000004", "2": "13900000005"}
    orders = {}
    for stars, number in numbers.items():
        rig.sim.add_destination(number, citizen(stars + "1"))  # then: solved
        orders[stars] = await rig.replied(phone=number)
    assert await rig.service.schedule_replied() == 3
    assert await rig.round() == 3
    seen = {}
    for stars, tid in orders.items():
        revisit = await rig.revisit_of(tid)
        ticket = await rig.h.call(rig.h.supervisor, "GET", f"/tickets/{tid}", expect=200)
        seen[stars] = (revisit.stars, revisit.score, revisit.solved, revisit.result,
                       ticket["status"], await ticket_revisits(rig.h, tid))
    assert seen == {
        "4": (4, "1", True, "satisfied", "archived", [("satisfied", 4)]),
        "3": (3, "2", True, "basically_satisfied", "archived", [("basically_satisfied", 3)]),
        "2": (2, "3", True, "unsatisfied", "revisited", [("unsatisfied", 2)]),
    }
    async with rig.h.sessionmaker() as session:
        event = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == orders["2"], TicketEvent.action == "revisit"))).one()
    assert event.data == {"result": "unsatisfied", "attempts": 1, "stars": 2}


async def test_a_sixth_star_is_asked_again_and_0_declines(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, citizen("65", key_delay=12))  # 6 is no answer; then 5
    five = await rig.replied()
    rig.sim.add_destination("13900000006", citizen("0"))
    declined = await rig.replied(phone="13900000006")
    await rig.service.schedule_replied()
    assert await rig.round() == 2
    revisit = await rig.revisit_of(five)
    assert (revisit.stars, revisit.score, revisit.result) == (5, "1", "satisfied")
    revisit = await rig.revisit_of(declined)
    assert (revisit.stars, revisit.score, revisit.result) == (None, "0", "declined")
    assert await ticket_revisits(rig.h, declined) == [("declined", None)]


async def test_a_text_on_a_stars_campaign_asks_for_stars(rig: Rig, revisit_api: Hotline
                                                         ) -> None:
    api = revisit_api
    rig.sim.add_destination(CITIZEN, Destination(mode="busy", answer_after=1))
    tid = await rig.replied()
    await rig.service.schedule_replied()
    for _ in range(3):
        assert await rig.round() == 1
        rig.h.clock.advance(timedelta(seconds=600))
    async with rig.h.sessionmaker() as session:
        message = (await session.scalars(select(RevisitMessage).where(
            RevisitMessage.ticket_id == tid))).one()
    assert message.scale == "stars"
    assert message.body.endswith("请回复1至5的数字为办理结果打分（5分最满意，1分最不满意）；"
                                 "回复0不参加回访。")
    path = f"/revisit/messages/{message.id}/reply"
    refused = await api.call(api.agent, "POST", path, {"reply": "6"}, expect=422)
    assert "0, 1, 2, 3, 4, 5" in refused["error"]["message"]
    await api.call(api.agent, "POST", path, {"reply": "2"}, expect=200)
    ticket = await api.call(api.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert (ticket["status"], ticket["revisit_result"]) == ("revisited", "unsatisfied")
    assert await ticket_revisits(api, tid) == [("unreachable", None), ("unsatisfied", 2)]
    revisit = await rig.revisit_of(tid)
    assert (revisit.stars, revisit.score, revisit.result) == (2, "3", "unsatisfied")
