"""Deadlines by urgency and by company type across holidays, the topic tree, and provisional
deadlines counted again when the year's calendar file arrives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from callcenter.bus.memory import MemoryBus
from callcenter.cli import main
from callcenter.feature import Runtime
from callcenter.settings import load_settings
from callcenter.tickets import FEATURE
from callcenter.tickets.config import REPO, ConfigError, TicketsConfig, load_taxonomy
from tests.tickets.conftest import Hotline, local

LEVEL_1 = {"urban_management", "illegal_construction", "property_management",
           "municipal_works", "environment", "human_resources_social_security",
           "market_regulation", "housing", "transport", "education", "health",
           "public_security_governance", "land_resources", "finance_insurance", "utilities",
           "government_services", "business_environment", "tourism", "agriculture", "other"}
OLD_CODES = ("human_resources_social_security", "environmental_protection", "public_services",
             "transport", "market_regulation", "public_opinion", "agriculture_forestry_water",
             "science_education_culture_sport", "health", "housing_construction",
             "civil_affairs_social_assistance", "city_management", "public_security",
             "illegal_construction", "property_management", "municipal_works",
             "labour_social_security", "business_administration", "other_consultation")


async def test_urgent_orders_run_on_the_clock_through_a_holiday(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 9, 30, 20))  # National Day holiday: 1-7 Oct 2026
    urgent = await h.dispatched(urgency="urgent")
    assert urgent["reply_due_at"].startswith("2026-10-01T12:00:00")  # 24 h: 1 Oct 20:00
    very = await h.dispatched(urgency="very_urgent")
    assert very["reply_due_at"].startswith("2026-09-30T14:00:00")  # 2 h: 22:00
    normal = await h.dispatched()
    # 5 working days: 8, 9, 10 (make-up Saturday), 12, 13 Oct
    assert normal["reply_due_at"].startswith("2026-10-13T15:59:59")
    body = await h.call(h.agent, "POST", "/tickets", {"urgency": "whenever"}, expect=422)
    assert body["error"]["field"] == "urgency"


async def test_company_deadlines_by_type_through_a_holiday(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 9, 30, 20))
    company = {"requester_kind": "company", "company_name": "某某有限公司"}
    question = await h.dispatched(ticket_type="consultation", **company)
    assert question["reply_due_at"].startswith("2026-10-10T15:59:59")  # 3: 8, 9, 10 Oct
    complaint = await h.dispatched(ticket_type="complaint", **company)
    assert complaint["reply_due_at"].startswith("2026-10-27T15:59:59")  # 15 working days
    citizen = await h.dispatched(ticket_type="complaint")
    assert citizen["reply_due_at"].startswith("2026-10-13T15:59:59")


async def test_the_topic_tree_covers_the_reported_categories() -> None:
    taxonomy = load_taxonomy(REPO / "config" / "taxonomy.toml")
    assert set(taxonomy.topics) == LEVEL_1
    assert all(taxonomy.topic_code(code) is not None for code in OLD_CODES)
    assert taxonomy.topic_code("labour_social_security") == "human_resources_social_security"
    assert taxonomy.default_units("water_supply") == [
        "water_company", "power_company", "gas_company", "heating_company"]


def test_a_topic_code_used_twice_stops_the_start(tmp_path: Path) -> None:
    text = (REPO / "config" / "taxonomy.toml").read_text("utf-8")
    broken = tmp_path / "taxonomy.toml"
    broken.write_text(text.replace('tourist_complaints = "旅游投诉"',
                                   'noise_nuisance = "旅游噪声"'), "utf-8")
    with pytest.raises(ConfigError, match="noise_nuisance"):
        load_taxonomy(broken)


async def test_retired_topic_codes_keep_working(hotline: Hotline) -> None:
    h = hotline
    old = await h.new_ticket(topic="city_management")
    assert old["topic"] == "urban_management"
    child = await h.new_ticket(topic="noise_nuisance")
    await h.new_ticket(topic="water_supply")
    found = await h.call(h.supervisor, "GET", "/tickets", topic="city_management")
    assert sorted(t["id"] for t in found["items"]) == sorted([old["id"], child["id"]])
    await h.call(h.agent, "POST", "/tickets", {"topic": "no_such_topic"}, expect=422)


async def test_provisional_deadlines_are_recomputed_when_the_year_arrives(
        hotline: Hotline, db_url: str, tmp_path: Path) -> None:
    h = hotline
    h.clock.set(local(2026, 12, 21, 10))
    report = await h.dispatched(ticket_type="report")  # 10 working days, into 2027
    assert report["reply_due_at"].startswith("2027-01-05T15:59:59")  # provisional 2027
    assert report["deadline_provisional"] is True
    listed = await h.call(h.supervisor, "GET", "/tickets", provisional="true")
    assert [t["id"] for t in listed["items"]] == [report["id"]]
    (tmp_path / "2027.toml").write_text("holidays = [2027-01-01, 2027-01-04]\n", "utf-8")
    env = {"CALLCENTER_DATABASE__URL": db_url,
           "CALLCENTER_TICKETS__CALENDAR_DIR": str(tmp_path)}
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["tickets", "recompute-deadlines"], env=env)
    assert result.exit_code == 0, result.output
    assert "recomputed 1 provisional deadline(s)" in result.output
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{report['id']}", expect=200)
    assert ticket["reply_due_at"].startswith("2027-01-06T15:59:59")
    assert ticket["deadline_provisional"] is False
    assert ticket["assignments"][0]["reply_due_at"].startswith("2027-01-06T15:59:59")
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{report['id']}/timeline")
    entry = timeline["events"][-1]
    assert entry["action"] == "deadline_recomputed" and entry["actor_role"] == "system"
    assert entry["data"]["old_reply_due_at"].startswith("2027-01-05T15:59:59")
    listed = await h.call(h.supervisor, "GET", "/tickets", provisional="true")
    assert listed["items"] == []


async def test_a_start_recomputes_provisional_deadlines(hotline: Hotline, tmp_path: Path
                                                       ) -> None:
    h = hotline
    h.clock.set(local(2026, 12, 21, 10))
    report = await h.dispatched(ticket_type="report")
    assert report["deadline_provisional"] is True
    (tmp_path / "2027.toml").write_text("holidays = [2027-01-01]\n", "utf-8")
    settings = load_settings(None, env={})
    settings = settings.model_copy(update={"tickets": TicketsConfig(calendar_dir=tmp_path)})
    runtime = Runtime(settings, h.sessionmaker, MemoryBus(), h.clock)
    (worker,) = FEATURE.build_workers(runtime)  # what the workers role runs at start
    stop = asyncio.Event()
    stop.set()
    await worker.run(stop)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{report['id']}", expect=200)
    # the same day as the provisional count (only 1 Jan off), now certain
    assert ticket["reply_due_at"] == report["reply_due_at"]
    assert ticket["deadline_provisional"] is False
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{report['id']}/timeline")
    assert timeline["events"][-1]["action"] == "deadline_recomputed"
