"""Masking of callers' personal data, who may see it unmasked, and the trace it leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from callcenter.auth.config import MaskingRule
from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import (
    PiiPolicy,
    mask_address,
    mask_ip,
    mask_name,
    mask_phone,
    record_access,
)
from callcenter.auth.testing import bearer, make_user, test_auth_config, token_for


def test_masks():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138-1234-5678") == "138****5678"
    assert mask_phone("09916234567") == "099****4567"
    assert mask_phone("12345") == "***45"
    assert mask_name("张三丰") == "张**"
    assert mask_name("李四") == "李*"
    assert mask_name("王") == "*"
    assert mask_address("乌鲁木齐市天山区幸福路8号3单元501") == "乌鲁木齐市天山区****"
    assert mask_address("浦东新区张江镇科苑路88号") == "浦东新区****"
    # 小区 (estate) and 社区 are not districts: the estate's name is hidden.
    assert mask_address("克拉玛依市阳光小区5栋") == "克拉玛依市****"
    assert mask_address("阳光小区5栋201") == "****"
    assert (mask_address("新疆维吾尔自治区昌吉市呼图壁县雀尔沟镇")
            == "新疆维吾尔自治区昌吉市呼图壁县****")
    assert mask_ip("10.12.3.4") == "10.12.*.*"
    assert mask_phone(None) is None and mask_name("") == ""


CALLER = {"name": "张三丰", "phone": "13812345678", "address": "克拉玛依市白碱滩区幸福路8号",
          "ip": None}
AGENT = Principal(1, "agent1", Role.AGENT, None)
SUPERVISOR = Principal(2, "sup1", Role.SUPERVISOR, None)
ADMIN = Principal(3, "admin1", Role.ADMIN, None)
HANDLER_7 = Principal(4, "h7", Role.UNIT_HANDLER, 7)
HANDLER_8 = Principal(5, "h8", Role.UNIT_HANDLER, 8)


@pytest.mark.parametrize("principal,need,unmasked", [
    (AGENT, "view", ["name", "phone", "address"]),
    (SUPERVISOR, "view", ["name", "phone", "address"]),
    (ADMIN, "view", []),  # administrators manage accounts, not citizens
    (HANDLER_7, "view", []),  # the unit reads the matter, not the person
    (HANDLER_7, "contact", ["name"]),  # its own order: the name to greet; click-to-call dials
    (HANDLER_8, "contact", []),  # not its order: the party complained about may be unit 8
])
def test_policy_by_role_need_and_unit(principal, need, unmasked):
    policy = PiiPolicy(test_auth_config())
    shown, revealed = policy.view(principal, CALLER, need=need, assigned_unit_id=7)
    assert revealed == unmasked
    for field in ("name", "phone", "address"):
        expected = CALLER[field] if field in unmasked else {
            "name": "张**", "phone": "138****5678", "address": "克拉玛依市白碱滩区****"}[field]
        assert shown[field] == expected
    assert shown["ip"] is None


def test_anonymous_callers_are_withheld_from_units():
    config = test_auth_config(masking=[
        MaskingRule(role=Role.UNIT_HANDLER, fields=["name", "phone", "address"])])
    policy = PiiPolicy(config)
    caller = {**CALLER, "anonymous": True}
    shown, revealed = policy.view(HANDLER_7, caller, need="contact", assigned_unit_id=7)
    assert revealed == []
    assert [shown[f] for f in ("name", "phone", "address")] == [None, None, None]
    # The office itself still sees the anonymous caller (it must be able to call back).
    assert PiiPolicy(test_auth_config()).view(AGENT, caller, need="view")[1] == [
        "name", "phone", "address"]


async def test_unmasked_reads_leave_an_audit_trail_supervisors_can_query(
        client, sessionmaker, clock, auth_config):
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    supervisor = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    policy = PiiPolicy(auth_config)
    principal = Principal(agent.id, agent.username, Role.AGENT, None)
    async with sessionmaker() as session, session.begin():
        _, revealed = policy.view(principal, CALLER, need="view")
        await record_access(session, principal, action="ticket.read_caller",
                            object_type="ticket", object_id=42, fields=revealed,
                            ip="10.0.0.5", clock=clock)
    clock.advance(timedelta(days=1))
    async with sessionmaker() as session, session.begin():
        await record_access(session, principal, action="ticket.read_caller",
                            object_type="ticket", object_id=43, fields=["phone"],
                            ip="10.0.0.5", clock=clock)
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    assert [(r.object_id, r.fields, r.role) for r in rows] == [
        ("42", ["name", "phone", "address"], "agent"), ("43", ["phone"], "agent")]

    headers = bearer(token_for(supervisor, auth_config, clock))
    day_one = await client.get(
        f"/api/v1/audit?user_id={agent.id}&from=2026-11-23&to=2026-11-23", headers=headers)
    assert [e["object_id"] for e in (await day_one.json())["entries"]] == ["42"]
    by_object = await client.get("/api/v1/audit?object_type=ticket&object_id=43",
                                 headers=headers)
    entry = (await by_object.json())["entries"][0]
    assert entry["username"] == agent.username and entry["ip"] == "10.0.0.5"
    bad = await client.get("/api/v1/audit?from=yesterday", headers=headers)
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "from"


def test_address_mask_stops_at_the_street():
    assert mask_address("天山区人民路区政府对面") == "天山区****"
    assert mask_address("白碱滩区中兴路社区12号") == "白碱滩区****"
