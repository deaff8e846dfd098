"""Back-fill from Asterisk's Master.csv: the captures' CDR files and one written here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from callcenter.calls.backfill import backfill_from_cdr
from callcenter.calls.config import CallsConfig
from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import FrozenClock
from tests.calls.test_tracker import RIG, START, replay_events


async def _rows(sessionmaker) -> dict[str, CallLog]:
    async with sessionmaker() as session:
        return {r.linkedid: r for r in (await session.execute(select(CallLog))).scalars()}


async def test_turn2_cdrs_backfill_once_and_never_twice(sessionmaker, captures_dir: Path
                                                        ) -> None:
    path = captures_dir / "cdr_Master_turn2.csv"
    assert await backfill_from_cdr(sessionmaker, path, pbx="pbx-a") == 14
    assert await backfill_from_cdr(sessionmaker, path, pbx="pbx-a") == 0  # idempotent
    rows = await _rows(sessionmaker)
    assert all(r.backfilled and r.pbx == "pbx-a" for r in rows.values())
    busy, answered = rows["1796194655.29"], rows["1796194642.26"]
    assert (busy.direction, busy.called_number, busy.disposition) == \
        ("outbound", "13800138001", "busy")
    assert (answered.disposition, answered.talk_seconds) == ("answered", 9.0)
    hotline = rows["1796194601.14"]
    assert (hotline.direction, hotline.queue, hotline.agent_interface) == \
        ("inbound", "hotline", "PJSIP/1001")
    assert hotline.started_at.replace(tzinfo=UTC) == datetime(2026, 12, 2, 6, 56, 41,
                                                              tzinfo=UTC)


async def test_a_call_already_in_the_log_is_left_alone(sessionmaker, captures_dir: Path
                                                       ) -> None:
    tracker = CallTracker(sessionmaker, FrozenClock(START), config=RIG)
    await tracker.start()
    for event in replay_events(captures_dir / "abandon.txt", START):
        tracker(event)
    await tracker.stop()
    added = await backfill_from_cdr(sessionmaker, captures_dir / "cdr_Master.csv",
                                    pbx="default", config=RIG)
    rows = await _rows(sessionmaker)
    assert added == len(rows) - 1 == 6
    seen = rows["1795239921.12"]
    assert seen.backfilled is False and seen.wait_seconds > 4  # the live row, untouched
    assert rows["1795239930.18"].disposition == "ivr_hangup"


async def test_only_calls_inside_the_outage_are_backfilled(sessionmaker, tmp_path: Path
                                                           ) -> None:
    lines = [  # Asterisk's cdr_csv column order; three calls, one leg each
        '"","13800000001","12345","from-pstn","""A"" <13800000001>","PJSIP/trunk-00000001",'
        '"","Hangup","","2026-12-02 09:00:00","2026-12-02 09:00:01","2026-12-02 09:00:30",'
        '30,29,"ANSWERED","DOCUMENTATION","1800000000.1",""',
        '"","13800000002","12345","from-pstn","""B"" <13800000002>","PJSIP/trunk-00000002",'
        '"PJSIP/1001-00000003","Queue","hotline,,,,300","2026-12-02 09:10:00",'
        '"2026-12-02 09:10:00","2026-12-02 09:10:20",20,20,"ANSWERED","DOCUMENTATION",'
        '"1800000600.2",""',
        '"","13800000003","12345","from-pstn","""C"" <13800000003>","PJSIP/trunk-00000004",'
        '"","Hangup","","2026-12-02 09:30:00",,"2026-12-02 09:30:02",2,0,"NO ANSWER",'
        '"DOCUMENTATION","1800001800.4",""',
        'not,a,cdr',
    ]
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = CallsConfig(cdr_csv=path)
    down = datetime(2026, 12, 2, 9, 5, tzinfo=UTC)
    up = datetime(2026, 12, 2, 9, 20, tzinfo=UTC)
    added = await backfill_from_cdr(sessionmaker, path, pbx="default", config=config,
                                    since=down, until=up)
    (row,) = (await _rows(sessionmaker)).values()
    assert added == 1 and row.linkedid == "1800000600.2"
    assert (row.disposition, row.queue, row.talk_seconds, row.backfilled) == \
        ("answered", "hotline", 20.0, True)
    # both ends of the window, with the 2 s slack of whole-second CDR times
    assert await backfill_from_cdr(sessionmaker, path, pbx="default", config=config,
                                   since=datetime(2026, 12, 2, 9, 0, 3, tzinfo=UTC),
                                   until=datetime(2026, 12, 2, 9, 29, 59, tzinfo=UTC)) == 0
    assert await backfill_from_cdr(sessionmaker, path, pbx="default", config=config,
                                   since=datetime(2026, 12, 2, 9, 0, 2, tzinfo=UTC),
                                   until=datetime(2026, 12, 2, 9, 30, 0, tzinfo=UTC)) == 2
