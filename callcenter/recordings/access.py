"""Who may listen to a recording: roles from the settings, and a unit only for recordings
of its own orders (another unit's is "not found", so nothing leaks). Every access, granted
or refused, is written to the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import record_access
from callcenter.clock import Clock
from callcenter.recordings.errors import ListeningRefused, RecordingNotFound
from callcenter.recordings.models import Recording
from callcenter.tickets.models import TicketAssignment, TicketCall


async def tickets_of(session: AsyncSession, recording: Recording) -> list[int]:
    return list((await session.scalars(select(TicketCall.ticket_id).where(
        TicketCall.linkedid == recording.linkedid).distinct())).all())


async def unit_sees(session: AsyncSession, unit_id: int | None, ticket_ids: list[int]) -> bool:
    if unit_id is None or not ticket_ids:
        return False
    found = await session.scalar(select(TicketAssignment.id).where(
        TicketAssignment.ticket_id.in_(ticket_ids), TicketAssignment.unit_id == unit_id)
        .limit(1))
    return found is not None


async def check_listener(session: AsyncSession, principal: Principal, recording_id: int,
                         roles: list[Role], *, action: str, ip: str | None, clock: Clock
                         ) -> Recording:
    """The recording if ``principal`` may play it; the access is audited either way (the
    caller commits the session, also when this raises)."""
    recording = await session.get(Recording, recording_id)
    refused: Exception | None = None
    if recording is None:
        refused = RecordingNotFound(f"no recording {recording_id}")
    elif principal.role not in roles:
        refused = ListeningRefused(f"role {principal.role} may not listen to recordings")
    elif principal.role is Role.UNIT_HANDLER and not await unit_sees(
            session, principal.unit_id, await tickets_of(session, recording)):
        refused = RecordingNotFound(f"no recording {recording_id}")
    await record_access(session, principal, action=action if refused is None
                        else f"{action}.refused", object_type="recording",
                        object_id=recording_id, fields=[], ip=ip, clock=clock)
    if refused is not None:
        raise refused
    assert recording is not None
    return recording
