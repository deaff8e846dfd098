"""The hot path: unwanted AMI events dropped before parsing, the same filter in manager.conf,
and domain events published only for topics someone subscribes to."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock, SystemClock
from callcenter.simulator.asterisk_conf import parse_conf
from callcenter.telephony import events as ev
from callcenter.telephony.ami import CONNECTION_EVENTS, AmiClient
from callcenter.telephony.config import AgiConfig
from callcenter.telephony.events import VARIABLE_PREFIXES
from callcenter.telephony.protocol import parse_message
from callcenter.telephony.service import Telephony, event_filter
from tests.telephony.asterisk_double import ReplayAsterisk
from tests.telephony.conftest import Collector, ami_config

REPO = Path(__file__).resolve().parents[2]
MANAGER_CONF = REPO / "config" / "asterisk" / "manager.conf"


def _events(raw: Path) -> list[str]:
    """The event messages of a ``.raw`` capture, as text without the blank line."""
    text = raw.read_bytes().split(b"\r\n", 1)[1].decode()
    return [m.strip("\r\n") for m in text.split("\r\n\r\n") if m.startswith("Event: ")]


def test_the_filter_keeps_every_event_the_translation_uses(captures_dir: Path) -> None:
    keeper = event_filter()
    translator = ev.EventTranslator(FrozenClock(datetime(2026, 12, 2, tzinfo=UTC)))
    used = dropped = total = 0
    for raw in sorted(captures_dir.glob("*.raw")):
        for message in _events(raw):
            total += 1
            kept = keeper.keeps(message)
            dropped += not kept
            fields = parse_message(message)
            if fields is not None and translator.translate(fields) is not None:
                used += 1
                assert kept, f"{raw.name}: dropped a used event: {message[:160]!r}"
    assert keeper.dropped == dropped
    assert used > 500 and dropped > total / 2  # most of what Asterisk sends goes unparsed


def test_filter_rules_for_names_variables_applications_and_replies() -> None:
    keeper = event_filter()
    snapshot = "\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/trunk-1\r\nUniqueid: 1.1"

    def varset(name: str) -> str:
        return f"Event: VarSet{snapshot}\r\nVariable: {name}\r\nValue: x"

    def newexten(app: str) -> str:
        return f"Event: Newexten{snapshot}\r\nExtension: s\r\nApplication: {app}\r\nAppData: "

    assert keeper.keeps(varset("MIXMONITOR_FILENAME")) and keeper.keeps(varset("CC_TICKET"))
    assert not keeper.keeps(varset("BRIDGEPEER")) and not keeper.keeps(varset("XCC_TICKET"))
    assert keeper.keeps(newexten("Queue")) and keeper.keeps(newexten("AGI"))
    assert not keeper.keeps(newexten("NoOp")) and not keeper.keeps(newexten("Set"))
    assert not keeper.keeps("Event: RTCPSent\r\nPrivilege: reporting,all\r\nSSRC: 0x1")
    assert not keeper.keeps("Event: DTMFBegin\r\nPrivilege: dtmf,all\r\nDigit: 1")
    assert keeper.keeps("Event: DTMFEnd\r\nPrivilege: dtmf,all\r\nDigit: 1")
    for name in CONNECTION_EVENTS:
        assert keeper.keeps(f"Event: {name}\r\nPrivilege: system,all")
    # a list item answering our action; a reply; a peer spelling headers in lower case
    assert keeper.keeps("Event: CoreShowChannel\r\nActionID: cc-1\r\nChannel: PJSIP/1-1")
    assert keeper.keeps("Response: Success\r\nActionID: cc-2\r\nPing: Pong")
    assert keeper.keeps("event: RTCPSent\r\nprivilege: reporting,all")
    assert keeper.dropped == 6


def _manager_filters() -> list[tuple[str, str]]:
    (user,) = [s for s in parse_conf(MANAGER_CONF) if s.name == "callcenter"]
    return [(k, v) for k, v in user.items if k.startswith("eventfilter")]


def test_manager_conf_sends_exactly_what_the_service_keeps() -> None:
    plain, by_header = set(), {}
    for key, value in _manager_filters():
        criteria = dict(re.findall(r"(\w+)\(([^()]*)\)", key))
        assert criteria.pop("action") == "include"
        name = criteria.pop("name")
        if "header" in criteria:
            assert criteria == {"header": criteria["header"], "method": "regex"}
            by_header[name] = (criteria["header"], re.compile(value))
        else:
            assert criteria == {} and value == ""
            plain.add(name)
    assert plain | set(by_header) == ev.WANTED_EVENTS | CONNECTION_EVENTS
    header, apps = by_header["Newexten"]
    assert header == "Application"
    assert {a for a in ev.APPS_OF_INTEREST if apps.search(a)} == ev.APPS_OF_INTEREST
    assert not apps.search("NoOp") and not apps.search("Queues")
    header, variables = by_header["VarSet"]
    assert header == "Variable"
    for name in ev.VARIABLES_OF_INTEREST | {f"{p}TICKET" for p in VARIABLE_PREFIXES}:
        assert variables.search(name), name
    assert not variables.search("BRIDGEPEER") and not variables.search("XCC_TICKET")
    assert not variables.search("QUEUESTATUS2")
    (user,) = [s for s in parse_conf(MANAGER_CONF) if s.name == "callcenter"]
    assert "system" in user.get("read", "").split(",")  # FullyBooted and Shutdown


async def test_dropped_events_never_reach_the_parser_or_listeners(
        asterisk: ReplayAsterisk, captures_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    keeper = event_filter()
    received = Collector()
    client = AmiClient(ami_config(asterisk.port), received, keep=keeper.keeps)
    await client.start()
    try:
        await client.wait_connected(5)
        messages = _events(captures_dir / "queue_call.raw")
        wanted = [m for m in messages if keeper.keeps(m)]
        keeper.dropped = 0
        with caplog.at_level(logging.WARNING):
            asterisk.send(b"".join(m.encode() + b"\r\n\r\n" for m in messages))
            # the parser would log this garbage line; dropped unparsed, it never sees it
            asterisk.send(b"Event: RTCPSent\r\nPrivilege: reporting,all\r\n%% not a header\r\n"
                          b"\r\nEvent: UserEvent\r\nPrivilege: user,all\r\nUserEvent: End\r\n\r\n")
            await received.wait_for(lambda items: items and items[-1].get("UserEvent") == "End")
        assert "ami.garbage_lines" not in caplog.text
        assert received.items[0]["Event"] == "FullyBooted"  # at login
        names = [f["Event"] for f in received.items[1:]]
        assert names == [parse_message(m)["Event"] for m in wanted] + ["UserEvent"]
        assert keeper.dropped == len(messages) - len(wanted) + 1 > len(messages) / 2
    finally:
        await client.stop()


async def _run_abandon(asterisk: ReplayAsterisk, captures_dir: Path,
                       *patterns: str) -> tuple[int, list, list]:
    """The abandon capture through the service, with one bus subscriber to ``patterns``;
    returns the unwanted publications, the listener's events and the subscriber's (topic,
    event), all up to the capture's end."""
    bus = MemoryBus()
    await bus.start()
    telephony = Telephony(ami_config(asterisk.port), AgiConfig(port=0), bus, SystemClock())
    seen = Collector()
    telephony.add_listener(seen)
    delivered: list = []
    unwanted = -1
    try:
        async with bus.subscribe(*patterns) as subscription:
            await telephony.start()
            await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot)
                                                  for e in items))
            raw = (captures_dir / "abandon.raw").read_bytes().split(b"\r\n", 1)[1]
            asterisk.send(raw + b"Event: UserEvent\r\nPrivilege: user,all\r\n"
                          b"UserEvent: End\r\n\r\n")
            async for topic, event in subscription:
                delivered.append((topic, event))
                if topic == "user.event" and event["name"] == "End":
                    unwanted = telephony.unwanted_publications
                    break
    finally:
        await telephony.stop()
        await bus.close()
    end = next(n for n, e in enumerate(seen.items) if isinstance(e, ev.UserEvent)) + 1
    return unwanted, seen.items[:end], delivered


async def test_only_topics_with_a_subscriber_are_published(
        asterisk: ReplayAsterisk, captures_dir: Path) -> None:
    unwanted, seen, delivered = await _run_abandon(asterisk, captures_dir,
                                                   "queue.*", "user.event")
    wanted = [e.topic for e in seen if e.topic.startswith("queue.") or e.topic == "user.event"]
    assert [topic for topic, _ in delivered] == wanted
    assert "queue.caller_abandoned" in wanted
    assert unwanted == len(seen) - len(wanted) > 0


async def test_everything_is_published_to_a_catch_all_subscriber(
        asterisk: ReplayAsterisk, captures_dir: Path) -> None:
    unwanted, seen, delivered = await _run_abandon(asterisk, captures_dir, "*")
    assert [topic for topic, _ in delivered] == [e.topic for e in seen]
    assert unwanted == 0


class SteppingClock:
    """Each reading is one second later than the one before: counts the readings."""

    def __init__(self) -> None:
        self.readings = 0

    def now(self) -> datetime:
        self.readings += 1
        return datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=self.readings)


def _user_event(name: str, timestamp: str | None = None) -> bytes:
    stamp = f"Timestamp: {timestamp}\r\n" if timestamp else ""
    return f"Event: UserEvent\r\nPrivilege: user,all\r\n{stamp}UserEvent: {name}\r\n\r\n".encode()


async def test_events_of_one_socket_read_share_one_receipt_time_read_once(
        asterisk: ReplayAsterisk) -> None:
    clock = SteppingClock()
    telephony = Telephony(ami_config(asterisk.port), AgiConfig(port=0), None, clock)
    seen = Collector()
    telephony.add_listener(seen)

    def users() -> list[ev.UserEvent]:
        return [e for e in seen.items if isinstance(e, ev.UserEvent)]

    await telephony.start()
    try:
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        before = clock.readings
        asterisk.send(_user_event("a") + _user_event("b", "1764633600.5") + _user_event("c"))
        await seen.wait_for(lambda _: len(users()) == 3)
        after_first_read = clock.readings
        asterisk.send(_user_event("d"))
        await seen.wait_for(lambda _: len(users()) == 4)
    finally:
        await telephony.stop()
    a, b, c, d = users()
    assert after_first_read - before == 1  # one reading for the read, not one per event
    assert a.at == c.at == datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=before + 1)
    assert b.at == datetime.fromtimestamp(1764633600.5, UTC)  # Asterisk's own time wins
    assert d.at == datetime(2026, 12, 2, tzinfo=UTC) + timedelta(
        seconds=after_first_read + 1)  # the next read: the clock is read again


def test_outside_a_socket_read_every_event_reads_the_clock() -> None:
    clock = SteppingClock()
    translator = ev.EventTranslator(clock)
    fields = parse_message("Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: a")
    assert fields is not None
    first, second = translator.translate(fields), translator.translate(fields)
    assert first is not None and second is not None
    assert (second.at - first.at, clock.readings) == (timedelta(seconds=1), 2)
