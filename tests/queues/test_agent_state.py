"""The agent state machine, fed Asterisk 22's own events: the captures replayed through the
real parser and translator, and events built like them for the paths the captures lack.
Every state and transition is checked with the exact time of the event that caused it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.queues.agent_state import AgentBoard, AgentState
from callcenter.telephony import events as ev
from tests.calls.raw_replay import raw_events, ts

ACW = "after-call work"
PHONE = "PJSIP/1001"
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def replay(board: AgentBoard, path: Path) -> list[tuple[datetime, str, str | None, str | None,
                                                         bool]]:
    """(time, state, reason, queue, call ended) of every change the capture causes."""
    out = []
    for event in raw_events(path):
        for change in board.apply(event):
            out.append((change.at, change.after.state, change.after.reason, change.after.queue,
                        change.call_ended))
    return out


def test_agent_session_capture_login_pause_call_and_logout(captures_dir: Path) -> None:
    changes = replay(AgentBoard(ACW), captures_dir / "agent_session.raw")
    assert changes == [
        (ts("1796194541.407127"), "available", None, None, False),  # QueueMemberAdded
        (ts("1796194541.407956"), "paused", "lunch", None, False),  # QueuePause lunch
        (ts("1796194542.410325"), "available", None, None, False),  # unpaused
        (ts("1796194542.918402"), "ringing", None, "hotline", False),  # AgentCalled
        (ts("1796194543.927877"), "on_call", None, "hotline", False),  # AgentConnect
        (ts("1796194548.935490"), "after_call_work", None, "hotline", True),  # AgentComplete
        # the phone going free (Status 1) does not end after-call work: only an unpause does
        (ts("1796194550.942063"), "logged_out", None, None, False),  # QueueRemove
        (ts("1796194550.942839"), "available", None, None, False),  # QueueAdd again
    ]


def test_hold_capture_gives_on_hold_between_hold_and_unhold(captures_dir: Path) -> None:
    changes = replay(AgentBoard(ACW), captures_dir / "hold.raw")
    states = [(at, state) for at, state, *_ in changes]
    assert states[2:5] == [(ts("1796194602.398155"), "on_call"),
                           (ts("1796194606.402339"), "on_hold"),
                           (ts("1796194611.410366"), "on_call")]
    assert states[5] == (ts("1796194613.413672"), "after_call_work")


@pytest.mark.parametrize("capture", ["blind_transfer", "attended_transfer"])
def test_a_transfer_ends_the_agents_call_with_after_call_work(captures_dir: Path,
                                                              capture: str) -> None:
    changes = replay(AgentBoard(ACW), captures_dir / f"{capture}.raw")
    ended = [c for c in changes if c[4]]
    assert ended and all(state == "after_call_work" and queue == "hotline"
                         for _, state, _, queue, _ in ended)
    assert changes[-1][1] == "logged_out"


# -- built events, for the paths the captures do not show ---------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def member(kind: type[ev.QueueMemberEvent], second: float, *, queue: str = "hotline",
           status: int = 1, in_call: bool = False, paused: bool = False, reason: str = "",
           interface: str = PHONE) -> ev.QueueMemberEvent:
    return kind(at(second), queue, "Agent 1001", interface, interface, "dynamic", 1, 0,
                in_call, status, paused, reason)


def agent(kind: type[ev.AgentEvent], second: float, *, linkedid: str = "call-1",
          queue: str = "hotline", interface: str = PHONE, **extra: object) -> ev.AgentEvent:
    return kind(at(second), "PJSIP/trunk-1", linkedid, linkedid, 6, "13800138000", "",
                "from-pstn", "12345", queue, "Agent 1001", interface, f"{interface}-01",
                **extra)


def states(board: AgentBoard, *events: ev.DomainEvent) -> list[tuple[datetime, AgentState]]:
    return [(c.at, c.after) for e in events for c in board.apply(e)]


def logged_in(board: AgentBoard, *queues: str) -> None:
    for queue in queues or ("hotline",):
        board.apply(member(ev.QueueMemberAdded, 0, queue=queue))


def test_after_call_work_lasts_until_asterisk_unpauses_the_member() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    assert states(
        board,
        agent(ev.AgentCalled, 1), agent(ev.AgentConnected, 2),
        agent(ev.AgentCompleted, 10, reason="caller"),
        member(ev.QueueMemberStatus, 10.1),  # phone free, pause not yet confirmed
        member(ev.QueueMemberPaused, 10.2, paused=True, reason=ACW),  # confirmed
        member(ev.QueueMemberPaused, 40, paused=False),  # the timer unpaused
    ) == [(at(1), AgentState("ringing", None, "hotline", "call-1")),
          (at(2), AgentState("on_call", None, "hotline", "call-1")),
          (at(10), AgentState("after_call_work", None, "hotline", "call-1")),
          (at(40), AgentState("available"))]


def test_without_after_call_work_the_call_ends_available() -> None:
    board = AgentBoard(ACW, after_call_work=False)
    logged_in(board)
    assert states(board, agent(ev.AgentConnected, 2), agent(ev.AgentCompleted, 9)) == [
        (at(2), AgentState("on_call", None, "hotline", "call-1")),
        (at(9), AgentState("available"))]


def test_a_pause_asked_during_a_call_starts_when_the_call_ends_instead_of_wrap_up() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    assert states(
        board, agent(ev.AgentConnected, 2),
        member(ev.QueueMemberPaused, 5, status=2, in_call=True, paused=True, reason="meal"),
        agent(ev.AgentCompleted, 9),
    ) == [(at(2), AgentState("on_call", None, "hotline", "call-1")),
          (at(9), AgentState("paused", "meal"))]


def test_a_pause_during_after_call_work_replaces_it() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    board.apply(agent(ev.AgentConnected, 2))
    board.apply(agent(ev.AgentCompleted, 9))
    assert states(board, member(ev.QueueMemberPaused, 12, paused=True, reason="break")) == [
        (at(12), AgentState("paused", "break"))]


def test_ring_no_answer_and_a_ring_canceled_by_another_agent_end_ringing() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    assert states(
        board,
        agent(ev.AgentCalled, 1), member(ev.QueueMemberStatus, 1.01, status=6),
        agent(ev.AgentRingNoAnswer, 16, ring_time_ms=15000),
        member(ev.QueueMemberStatus, 16.01),
        agent(ev.AgentCalled, 20, linkedid="call-2"),
        member(ev.QueueMemberStatus, 20.01, status=6),
        member(ev.QueueMemberStatus, 23, status=1),  # someone else answered: phone free
    ) == [(at(1), AgentState("ringing", None, "hotline", "call-1")),
          (at(16), AgentState("available")),
          (at(20), AgentState("ringing", None, "hotline", "call-2")),
          (at(23), AgentState("available"))]


def test_a_call_that_ends_without_agent_complete_ends_on_the_free_phone() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    board.apply(agent(ev.AgentConnected, 2))
    changes = board.apply(member(ev.QueueMemberStatus, 30))
    assert [(c.at, c.after.state, c.call_ended) for c in changes] == [
        (at(30), "after_call_work", True)]


def test_calls_outside_the_queues_come_from_the_phones_device_state() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    assert states(
        board,
        member(ev.QueueMemberStatus, 1, status=6),  # a direct call rings the phone
        member(ev.QueueMemberStatus, 3, status=2),  # answered
        member(ev.QueueMemberStatus, 5, status=8),  # held
        member(ev.QueueMemberStatus, 9, status=1),  # hung up
    ) == [(at(1), AgentState("ringing")), (at(3), AgentState("on_call")),
          (at(5), AgentState("on_hold")), (at(9), AgentState("available"))]


def test_an_agent_in_two_queues_logs_out_when_the_last_membership_goes() -> None:
    board = AgentBoard(ACW)
    assert states(board, member(ev.QueueMemberAdded, 1),
                  member(ev.QueueMemberAdded, 1, queue="hotline-en"),
                  member(ev.QueueMemberRemoved, 5),
                  member(ev.QueueMemberRemoved, 5.1, queue="hotline-en")) == [
        (at(1), AgentState("available")), (at(5.1), AgentState("logged_out"))]


def test_logout_during_a_call_ends_everything_at_the_removal() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    board.apply(agent(ev.AgentConnected, 2))
    assert states(board, member(ev.QueueMemberRemoved, 4, status=2, in_call=True)) == [
        (at(4), AgentState("logged_out"))]
    assert board.agents == {} and board.states == {}


def test_events_of_members_never_added_are_not_agents() -> None:
    board = AgentBoard(ACW)
    assert states(board, member(ev.QueueMemberStatus, 1, interface="Local/100@agents"),
                  agent(ev.AgentCalled, 2, interface="Local/100@agents")) == []


def snapshot_row(queue: str = "hotline", *, status: str = "1", paused: str = "0",
                 reason: str = "", in_call: str = "0") -> dict[str, str]:
    return {"Event": "QueueMember", "Queue": queue, "Name": "Agent 1001", "Location": PHONE,
            "StateInterface": PHONE, "Status": status, "Paused": paused,
            "PausedReason": reason, "InCall": in_call}


def test_a_service_restart_keeps_a_state_the_snapshot_confirms() -> None:
    board = AgentBoard(ACW)
    board.seed(PHONE, "Agent 1001", AgentState("on_call", None, "hotline", "call-1"),
               ["hotline"])
    assert board.snapshot([snapshot_row(status="2", in_call="1")], at(50)) == []
    assert board.state(PHONE) == AgentState("on_call", None, "hotline", "call-1")
    # the call ends as usual afterwards
    assert states(board, agent(ev.AgentCompleted, 60))[0][1].state == "after_call_work"


def test_a_service_restart_corrects_a_state_the_snapshot_contradicts() -> None:
    board = AgentBoard(ACW)
    board.seed(PHONE, "Agent 1001", AgentState("on_call", None, "hotline", "call-1"),
               ["hotline"])
    board.seed("PJSIP/1002", "Agent 1002", AgentState("paused", "meal"), ["hotline"])
    rows = [snapshot_row(paused="1", reason="break")]
    changes = {c.interface: (c.at, c.after) for c in board.snapshot(rows, at(50))}
    assert changes == {PHONE: (at(50), AgentState("paused", "break")),
                       "PJSIP/1002": (at(50), AgentState("logged_out"))}


def test_an_asterisk_restart_snapshot_without_members_logs_everyone_out() -> None:
    board = AgentBoard(ACW)
    logged_in(board, "hotline", "hotline-en")
    changes = board.apply(ev.QueuesSnapshot(at(70), 2, ({"Queue": "hotline"},), (), ()))
    assert [(c.at, c.after) for c in changes] == [(at(70), AgentState("logged_out"))]


def test_a_late_agent_complete_for_a_call_already_ended_starts_no_second_wrap_up() -> None:
    board = AgentBoard(ACW)
    logged_in(board)
    board.apply(agent(ev.AgentConnected, 2))
    board.apply(member(ev.QueueMemberStatus, 9))  # the agent hung up: the phone is free
    board.apply(member(ev.QueueMemberPaused, 9.1, paused=True, reason=ACW))
    board.apply(member(ev.QueueMemberPaused, 39, paused=False))
    assert states(board, agent(ev.AgentCompleted, 60)) == []  # the caller left much later
    assert board.state(PHONE) == AgentState("available")
