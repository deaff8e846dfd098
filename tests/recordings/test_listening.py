"""Listening: range requests and download for roles and units allowed to; 403 for a role
that may not listen, 404 for another unit's recording; every access audited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from callcenter.auth.models import AuditLog
from tests.recordings.conftest import Office, in_progress, write_wav

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


async def stored_for_unit_a(office: Office) -> tuple[int, bytes]:
    ticket = await in_progress(office, calls=[{"linkedid": "1700000001.1"}])
    assert ticket["lead_unit_id"] == office.unit_a
    source = write_wav(office.config.monitor_dir / "1700000001.1.wav", 5.0)
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000001.1",
                                             uniqueid="1700000001.1", source=source.name,
                                             ended_at=ENDED)
    assert row.status == "stored"
    return row.id, source.read_bytes()


async def audio(office: Office, who, rid: int, **kwargs):
    return await office.client.get(f"/api/v1/recordings/{rid}/audio", headers={
        **who.headers, **kwargs.pop("headers", {})}, **kwargs)


async def audit_actions(office: Office, rid: int) -> list[tuple[str, str]]:
    async with office.sessionmaker() as session:
        rows = (await session.scalars(select(AuditLog).where(
            AuditLog.object_type == "recording", AuditLog.object_id == str(rid))
            .order_by(AuditLog.id))).all()
    return [(row.username, row.action) for row in rows]


async def test_a_range_request_gets_exactly_those_bytes(office: Office) -> None:
    rid, data = await stored_for_unit_a(office)
    response = await audio(office, office.supervisor, rid, headers={"Range": "bytes=100-1099"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response.headers["Content-Type"] == "audio/wav"
    assert await response.read() == data[100:1100]
    tail = await audio(office, office.supervisor, rid, headers={"Range": "bytes=-44"})
    assert tail.status == 206 and await tail.read() == data[-44:]


async def test_download_gives_the_whole_file_as_an_attachment(office: Office) -> None:
    rid, data = await stored_for_unit_a(office)
    response = await audio(office, office.handler_a, rid, params={"download": "1"})
    assert response.status == 200
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="recording-{rid}.wav"'
    assert await response.read() == data
    assert await audit_actions(office, rid) == [
        (office.handler_a.principal.username, "recording.download")]


async def test_a_role_not_allowed_gets_403_and_is_audited(office: Office) -> None:
    rid, _ = await stored_for_unit_a(office)
    response = await audio(office, office.agent, rid)
    assert response.status == 403
    assert await audit_actions(office, rid) == [
        (office.agent.principal.username, "recording.play.refused")]


async def test_another_units_recording_is_404_and_audited(office: Office) -> None:
    rid, _ = await stored_for_unit_a(office)
    response = await audio(office, office.handler_b, rid)
    assert response.status == 404
    meta = await office.client.get(f"/api/v1/recordings/{rid}", headers=office.handler_b.headers)
    assert meta.status == 404
    assert await audit_actions(office, rid) == [
        (office.handler_b.principal.username, "recording.play.refused"),
        (office.handler_b.principal.username, "recording.view.refused")]
    own = await audio(office, office.handler_a, rid)
    assert own.status == 200


async def test_without_a_token_nothing_is_served(office: Office) -> None:
    rid, _ = await stored_for_unit_a(office)
    response = await office.client.get(f"/api/v1/recordings/{rid}/audio")
    assert response.status == 401
    missing = await audio(office, office.supervisor, 999999)
    assert missing.status == 404
    odd = await office.client.get("/api/v1/recordings/x/audio",
                                  headers=office.supervisor.headers)
    assert odd.status == 404


async def test_click_to_call_without_a_phone_system_dials_nothing(office: Office) -> None:
    tid = (await in_progress(office))["id"]
    body = await office.call(office.handler_a, "POST", f"/tickets/{tid}/contact-calls",
                             {"extension": "1003"}, expect=409)
    assert body["error"]["code"] == "telephony_unavailable"
    calls = await office.call(office.handler_a, "GET", f"/tickets/{tid}/contact-calls",
                              expect=200)
    assert calls["contact_calls"] == []
