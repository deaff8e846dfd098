"""Every action in every state, over HTTP: allowed with its effect, or refused.

The actions and states come from the lifecycle's tables (so a new one cannot be left out);
the expected outcome of each pair is written out here, not derived from the code.
Outcomes: a state name (allowed; the order is then in that state), ``"201"`` (allowed,
created), ``"409"`` (illegal in this state: the error names the state), ``"rule"`` (the
table allows it but a rule refuses it: 409 ``rule_violation``), ``"404"`` (a unit acting on
an order it does not hold: not even its existence is shown), ``"422"`` (allowed here, but
this body is wrong for this order).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from callcenter.tickets.lifecycle import TRANSITIONS
from callcenter.tickets.models import TicketStatus
from tests.tickets.conftest import Hotline

PROOF = {"attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}
UNIT_ACTIONS = ("accept", "start", "return", "contact", "reply_plan", "reply",
                "request_extension", "report_silent")
NOT_HELD = {a: "404" for a in UNIT_ACTIONS}

EXPECTED: dict[str, dict[str, str]] = {
    "draft": {**NOT_HELD, "update": "draft", "register": "registered",
              "link_duplicate": "merged"},
    "registered": {**NOT_HELD, "link_duplicate": "merged", "direct_answer": "closed",
                   "not_accept": "not_accepted", "escalate": "escalated",
                   "dispatch": "dispatched"},
    "escalated": {**NOT_HELD, "dispatch": "dispatched"},
    "dispatched": {"accept": "accepted", "return": "returned", "contact": "dispatched",
                   "decide_extension": "404", "release_assisting": "422"},
    "accepted": {"start": "in_progress", "return": "returned", "contact": "accepted",
                 "request_extension": "201", "decide_extension": "404",
                 "report_silent": "422", "release_assisting": "422"},
    "in_progress": {"contact": "in_progress", "reply_plan": "rule", "reply": "replied",
                    "request_extension": "201", "decide_extension": "404",
                    "report_silent": "422", "release_assisting": "422"},
    "promised": {"contact": "promised", "reply": "replied", "request_extension": "201",
                 "decide_extension": "404", "rework": "in_progress", "report_silent": "422",
                 "release_assisting": "422"},
    "returned": {**NOT_HELD, "escalate": "escalated", "dispatch": "dispatched"},
    "replied": {"rework": "in_progress", "revisit": "revisited", "archive": "rule"},
    # revisited as "satisfied": no re-dispatch, no review, rework only with a basis
    "revisited": {"dispatch": "rule", "rework": "422", "review": "rule", "revisit": "rule",
                  "archive": "archived"},
    "closed": {**NOT_HELD, "revisit": "revisited", "archive": "archived"},
    "not_accepted": dict(NOT_HELD),
    "merged": dict(NOT_HELD),
    "archived": dict(NOT_HELD),
}


def requests(h: Hotline, original: int) -> dict[str, tuple[Any, str, str, Any]]:
    """One valid-looking request per action: (actor, method, path suffix, body)."""
    plan_day = (date(2026, 11, 23) + timedelta(days=10)).isoformat()
    return {
        "update": (h.agent, "PATCH", "", {"title": "改"}),
        "register": (h.agent, "POST", "/register", None),
        "link_duplicate": (h.agent, "POST", "/link-duplicate", {"duplicate_of": original}),
        "direct_answer": (h.supervisor, "POST", "/direct-answer", {"answer": "已解答"}),
        "not_accept": (h.agent, "POST", "/not-accept", {"reason": "advertising"}),
        "escalate": (h.agent, "POST", "/escalate", {"reason": "职责不清"}),
        "dispatch": (h.supervisor, "POST", "/dispatch",
                     {"lead_unit_id": h.unit_b, "note": "改派"}),
        "accept": (h.handler_a, "POST", "/accept", None),
        "start": (h.handler_a, "POST", "/start", None),
        "return": (h.handler_a, "POST", "/return", {"reason": "非本单位职责"}),
        "contact": (h.handler_a, "POST", "/contact", {"note": "已联系", **PROOF}),
        "reply_plan": (h.handler_a, "POST", "/reply",
                       {"kind": "plan", "content": "计划", "promised_date": plan_day}),
        "reply": (h.handler_a, "POST", "/reply", {"content": "已办", **PROOF}),
        "request_extension": (h.handler_a, "POST", "/extensions",
                              {"days": 2, "reason": "情况复杂"}),
        "decide_extension": (h.supervisor, "POST", "/extensions/999999/decision",
                             {"approve": True}),
        "rework": (h.supervisor, "POST", "/rework", {"reason": "答复不具体"}),
        "revisit": (h.agent, "POST", "/revisit", {"result": "satisfied"}),
        "review": (h.supervisor, "POST", "/review", {"reason": "已解释"}),
        "report_silent": (h.handler_a, "POST", "/assisting/silent",
                          {"unit_id": h.unit_c, "reason": "不回复"}),
        "release_assisting": (h.supervisor, "POST", "/assisting/release",
                              {"unit_id": h.unit_c, "reason": "同意"}),
        "archive": (h.supervisor, "POST", "/archive", None),
    }


async def reach(h: Hotline, state: str, original: int) -> int:
    """A fresh order in ``state``, held (where a unit holds it) by unit A."""
    async def post(who: Any, tid: int, step: str, body: Any = None) -> None:
        await h.call(who, "POST", f"/tickets/{tid}/{step}", body, expect=200)

    if state == "draft":
        return (await h.call(h.agent, "POST", "/tickets", {"content": "路灯不亮"},
                             expect=201))["id"]
    if state in ("registered", "escalated", "closed", "not_accepted", "merged", "archived"):
        tid = (await h.new_ticket())["id"]
        steps: dict[str, list[tuple[Any, str, Any]]] = {
            "registered": [],
            "escalated": [(h.agent, "escalate", {"reason": "职责不清"})],
            "closed": [(h.supervisor, "direct-answer", {"answer": "已解答"})],
            "not_accepted": [(h.agent, "not-accept", {"reason": "advertising"})],
            "merged": [(h.agent, "link-duplicate", {"duplicate_of": original})],
            "archived": [(h.supervisor, "direct-answer", {"answer": "已解答"}),
                         (h.supervisor, "archive", None)],
        }
        for who, step, body in steps[state]:
            await post(who, tid, step, body)
        return tid
    mode = "promised" if state == "promised" else "time_limited"
    tid = (await h.call(h.supervisor, "POST",
                        f"/tickets/{(await h.new_ticket())['id']}/dispatch",
                        {"lead_unit_id": h.unit_a, "mode": mode}, expect=200))["id"]
    path = {"dispatched": [], "returned": ["return"], "accepted": ["accept"],
            "in_progress": ["accept", "start"], "promised": ["accept", "start", "plan"],
            "replied": ["accept", "start", "reply"],
            "revisited": ["accept", "start", "reply", "revisit"]}[state]
    bodies: dict[str, tuple[Any, str, Any]] = {
        "return": (h.handler_a, "return", {"reason": "非本单位职责"}),
        "accept": (h.handler_a, "accept", None), "start": (h.handler_a, "start", None),
        "plan": (h.handler_a, "reply", {"kind": "plan", "content": "计划",
                                        "promised_date": "2026-12-10"}),
        "reply": (h.handler_a, "reply", {"content": "已办", **PROOF}),
        "revisit": (h.agent, "revisit", {"result": "satisfied"}),
    }
    for step in path:
        who, name, body = bodies[step]
        await post(who, tid, name, body)
    return tid


async def test_every_action_in_every_state(hotline: Hotline) -> None:
    h = hotline
    assert sorted(EXPECTED) == sorted(s.value for s in TicketStatus)
    original = (await h.new_ticket())["id"]
    calls = requests(h, original)
    assert sorted(calls) == sorted(a.value for a in TRANSITIONS)
    wrong: list[str] = []
    for state in EXPECTED:
        shared = await reach(h, state, original)
        for action in TRANSITIONS:
            expected = EXPECTED[state].get(action.value, "409")
            allowed = expected not in ("409", "404", "rule", "422")
            tid = await reach(h, state, original) if allowed else shared
            got = await _attempt(h, calls[action.value], tid, state)
            if got != expected:
                wrong.append(f"{action.value} in {state}: expected {expected}, got {got}")
    assert wrong == []


async def _attempt(h: Hotline, request: tuple[Any, str, str, Any], tid: int, state: str
                   ) -> str:
    who, method, suffix, body = request
    answer = await h.call(who, method, f"/tickets/{tid}{suffix}", body)
    status = h.last.status
    if status == 409:
        error = answer["error"]
        if error["code"] == "rule_violation":
            return "rule"
        assert error["code"] == "illegal_transition" and state in error["message"], answer
        return "409"
    if status in (201, 404, 422):
        return str(status)
    assert status == 200, answer
    after = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    return str(after["status"])
