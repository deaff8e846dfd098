"""Agents: profiles and skills, login / pause / logout through the AMI command port, the
stored state and its periods.

The database says what the service wants (``logged_in``, the pause asked for) and what
Asterisk last reported (``state*``, the periods); Asterisk's events, not the actions sent,
move the state (``listeners.py``), so a refused or lost action never shows a false state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import record_access
from callcenter.bus.base import Bus
from callcenter.clock import Clock
from callcenter.queues.agent_state import LOGGED_OUT, AgentState, Change
from callcenter.queues.config import QueuesConfig
from callcenter.queues.errors import (
    AgentNotFound,
    AsteriskRefused,
    InterfaceTaken,
    NotAllowed,
    TelephonyUnavailable,
)
from callcenter.queues.models import Agent, AgentSkill, AgentStatePeriod
from callcenter.telephony.errors import AmiActionError, AmiNotConnected, AmiTimeout

log = logging.getLogger(__name__)

STATE_TOPIC = "queues.agent_state"
RESTORED_TOPIC = "queues.members_restored"
T = TypeVar("T")
ALREADY_THERE = "Already there"
NOT_THERE = "Not there"


@dataclass(frozen=True, slots=True)
class Skill:
    queue: str
    level: int


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as the API shows it: profile, skills, current state and since when."""

    id: int
    user_id: int
    member_name: str
    extension: str
    interface: str | None
    logged_in: bool
    skills: tuple[Skill, ...]
    state: str
    reason: str | None
    queue: str | None
    since: datetime | None
    after_call_work_until: datetime | None


class AgentService:
    """Agent profiles and actions; ``commands`` is the telephony command port (None in a
    process without the telephony role: actions that need Asterisk then refuse)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: QueuesConfig, bus: Bus | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.bus = bus

    # -- profiles --------------------------------------------------------------------------

    async def save_agent(self, session: AsyncSession, *, user_id: int, extension: str,
                         skills: list[Skill]) -> Agent:
        """Create or update the agent profile of a user of role agent."""
        user = await session.get(User, user_id)
        if user is None or user.role != Role.AGENT:
            raise AgentNotFound(f"user {user_id} is not an agent", field="user_id")
        self._check_skills(skills)
        agent = await session.scalar(select(Agent).where(Agent.user_id == user_id))
        if agent is None:
            agent = Agent(user_id=user_id, member_name=user.display_name, extension=extension,
                          logged_in=False, state="logged_out")
            session.add(agent)
        else:
            agent.extension = extension
        await session.flush()
        await self._replace_skills(session, agent.id, skills)
        return agent

    def _check_skills(self, skills: list[Skill]) -> None:
        names = [s.queue for s in skills]
        if len(set(names)) != len(names):
            raise NotAllowed("a queue appears twice in the skills", field="skills")
        for skill in skills:
            if skill.queue not in self.config.queue_names:
                raise NotAllowed(f"no queue {skill.queue!r} (queues: "
                                 f"{', '.join(self.config.queue_names)})", field="skills")
            if not 1 <= skill.level <= self.config.skill_levels:
                raise NotAllowed(f"skill levels are 1..{self.config.skill_levels}",
                                 field="skills")

    async def _replace_skills(self, session: AsyncSession, agent_id: int,
                              skills: list[Skill]) -> None:
        for row in await session.scalars(select(AgentSkill).where(
                AgentSkill.agent_id == agent_id)):
            await session.delete(row)
        await session.flush()
        for skill in skills:
            session.add(AgentSkill(agent_id=agent_id, queue=skill.queue, level=skill.level))
        await session.flush()

    async def skills(self, session: AsyncSession, agent_id: int) -> list[Skill]:
        rows = await session.scalars(select(AgentSkill).where(AgentSkill.agent_id == agent_id)
                                     .order_by(AgentSkill.queue))
        return [Skill(r.queue, r.level) for r in rows]

    async def agent_of_user(self, session: AsyncSession, user_id: int) -> Agent:
        agent = await session.scalar(select(Agent).where(Agent.user_id == user_id))
        if agent is None:
            raise AgentNotFound("you have no agent profile (ask a supervisor)")
        return agent

    async def agent(self, session: AsyncSession, agent_id: int) -> Agent:
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent {agent_id}")
        return agent

    async def view(self, session: AsyncSession, agent: Agent) -> AgentView:
        return AgentView(agent.id, agent.user_id, agent.member_name, agent.extension,
                         agent.interface, agent.logged_in,
                         tuple(await self.skills(session, agent.id)), agent.state,
                         agent.state_reason, agent.state_queue, agent.state_since,
                         agent.after_call_work_until)

    async def list_views(self, session: AsyncSession) -> list[AgentView]:
        agents = (await session.scalars(select(Agent).order_by(Agent.member_name,
                                                                Agent.id))).all()
        return [await self.view(session, a) for a in agents]

    # -- actions (through Asterisk) --------------------------------------------------------

    async def login(self, commands: Any, agent_id: int, extension: str | None = None) -> Agent:
        """Add the agent's phone to each of their queues (penalty from the skill level)."""
        _need(commands)
        interface = self.config.interface(extension or "")
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self.agent(session, agent_id)
            if agent.logged_in:
                raise NotAllowed(f"already logged in on {agent.interface}")
            if extension is None:
                interface = self.config.interface(agent.extension)
            holder = await session.scalar(select(Agent).where(Agent.interface == interface,
                                                              Agent.id != agent.id))
            if holder is not None and holder.logged_in:
                raise InterfaceTaken(f"{interface} is in use by another agent",
                                     field="extension")
            if holder is not None:
                holder.interface = None
                await session.flush()
            skills = await self.skills(session, agent.id)
            if not skills:
                raise NotAllowed("the agent has no queue skills")
            agent.interface, agent.logged_in, agent.paused_reason = interface, True, None
        try:
            for skill in skills:
                await self._add(commands, agent, skill)
        except (AsteriskRefused, TelephonyUnavailable):
            await self._undo_login(commands, agent, skills)
            raise
        log.info("queues.agent_login agent=%s interface=%s queues=%s", agent.id, interface,
                 ",".join(s.queue for s in skills))
        return agent

    async def _undo_login(self, commands: Any, agent: Agent, skills: list[Skill]) -> None:
        """A login Asterisk did not fully take is not a login: no half membership stays."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(Agent).where(Agent.id == agent.id)
                                  .values(logged_in=False))
        for skill in skills:
            try:
                await self._remove(commands, skill.queue, agent.interface or "")
            except (AsteriskRefused, TelephonyUnavailable):
                log.warning("queues.login_undo_failed agent=%s queue=%s", agent.id,
                            skill.queue)

    async def _add(self, commands: Any, agent: Agent, skill: Skill, *,
                   paused: bool = False) -> None:
        assert agent.interface is not None
        await _asterisk(commands.queue_add(skill.queue, agent.interface, agent.member_name,
                                           self.config.penalty(skill.level), paused,
                                           agent.interface), tolerated=ALREADY_THERE)

    async def _remove(self, commands: Any, queue: str, interface: str) -> None:
        await _asterisk(commands.queue_remove(queue, interface), tolerated=NOT_THERE)

    async def logout(self, commands: Any, agent_id: int) -> Agent:
        _need(commands)
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self.agent(session, agent_id)
            if not agent.logged_in or agent.interface is None:
                raise NotAllowed("not logged in")
            agent.logged_in, agent.paused_reason = False, None
            agent.after_call_work_until = None
            skills = await self.skills(session, agent.id)
        for skill in skills:
            await self._remove(commands, skill.queue, agent.interface)
        log.info("queues.agent_logout agent=%s interface=%s", agent.id, agent.interface)
        return agent

    async def pause(self, commands: Any, agent_id: int, reason: str) -> Agent:
        """Pause in every queue with ``reason`` (one of ``pause_reasons``)."""
        _need(commands)
        if reason not in self.config.pause_reasons:
            raise NotAllowed(f"reason must be one of {', '.join(self.config.pause_reasons)}",
                             field="reason")
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self._logged_in(session, agent_id)
            agent.paused_reason, agent.after_call_work_until = reason, None
        await self._pause(commands, agent.interface, True, reason)
        return agent

    async def unpause(self, commands: Any, agent_id: int) -> Agent:
        """Back to taking calls (also ends after-call work early)."""
        _need(commands)
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self._logged_in(session, agent_id)
            agent.paused_reason, agent.after_call_work_until = None, None
        await self._pause(commands, agent.interface, False, None)
        return agent

    async def _pause(self, commands: Any, interface: str | None, paused: bool,
                     reason: str | None, queue: str | None = None) -> None:
        """Pause or unpause in ``queue``, or in every queue of the member (None)."""
        await _asterisk(commands.queue_pause(queue, interface, paused, reason))

    async def _logged_in(self, session: AsyncSession, agent_id: int) -> Agent:
        agent = await self.agent(session, agent_id)
        if not agent.logged_in or agent.interface is None:
            raise NotAllowed("not logged in")
        return agent

    async def extend_after_call_work(self, agent_id: int, seconds: int) -> Agent:
        """More time to write up the call, up to ``after_call_work_max_seconds`` after the
        call; the timer in the telephony process reads the new end when it fires."""
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self.agent(session, agent_id)
            if agent.state != "after_call_work" or agent.after_call_work_until is None \
                    or agent.state_since is None:
                raise NotAllowed(f"not in after-call work (state {agent.state})")
            limit = agent.state_since + timedelta(seconds=self.config.after_call_work_max_seconds)
            if agent.after_call_work_until >= limit:
                raise NotAllowed("after-call work is already at its maximum")
            agent.after_call_work_until = min(
                agent.after_call_work_until + timedelta(seconds=seconds), limit)
        log.info("queues.after_call_work_extended agent=%s until=%s", agent.id,
                 agent.after_call_work_until.isoformat())
        return agent

    async def set_skills(self, commands: Any, agent_id: int, skills: list[Skill]) -> Agent:
        """Move an agent between queues: live (add, remove, penalty) when logged in."""
        self._check_skills(skills)
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            agent = await self.agent(session, agent_id)
            old = {s.queue: s for s in await self.skills(session, agent.id)}
            live = agent.logged_in and agent.interface is not None
            if live:
                _need(commands)
            await self._replace_skills(session, agent.id, skills)
        if not live:
            return agent
        new = {s.queue: s for s in skills}
        for queue in old.keys() - new.keys():
            await self._remove(commands, queue, agent.interface)
        for queue, skill in new.items():
            if queue not in old:
                await self._add(commands, agent, skill, paused=agent.paused_reason is not None)
                if agent.paused_reason is not None:
                    await self._pause(commands, agent.interface, True, agent.paused_reason,
                                      queue)
            elif old[queue].level != skill.level:
                await _asterisk(commands.queue_penalty(
                    agent.interface, self.config.penalty(skill.level), queue))
        return agent

    async def spy_target(self, commands: Any, agent_id: int, mode: str
                         ) -> tuple[Agent, str]:
        """The logged-in agent to spy on and the ``ChanSpy`` options of ``mode``; refuses
        before anything rings."""
        _need(commands)
        options = self.config.spy_modes.get(mode)
        if options is None:
            raise NotAllowed(f"mode must be one of {', '.join(self.config.spy_modes)}",
                             field="mode")
        async with self.sessionmaker(expire_on_commit=False) as session:
            return await self._logged_in(session, agent_id), options

    async def spy(self, commands: Any, agent: Agent, options: str, extension: str) -> str:
        """Ring the supervisor's phone; once answered it listens to, whispers to or barges
        into the agent's call (``ChanSpy`` on the agent's phone, which waits for a call if
        there is none yet). Returns the Originate's outcome."""
        result = await _asterisk(commands.originate(
            self.config.interface(extension), application="ChanSpy",
            data=f"{agent.interface},{options}", caller_id=f"<{extension}>",
            timeout_ms=self.config.spy_ring_timeout_ms))
        assert result is not None
        log.info("queues.spy agent=%s options=%s extension=%s outcome=%s", agent.id, options,
                 extension, result.outcome)
        return result.outcome

    # -- after-call work (telephony role) --------------------------------------------------

    async def start_after_call_work(self, commands: Any, interface: str, at: datetime
                                    ) -> datetime | None:
        """Pause the agent with the after-call-work reason; the end is stored for the
        agent and the desktop. None when the agent is not ours."""
        seconds = self.config.after_call_work_seconds
        until = at + timedelta(seconds=seconds)
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(update(Agent).where(
                Agent.interface == interface, Agent.logged_in.is_(True))
                .values(after_call_work_until=until))
            if result.rowcount == 0:
                return None
        await self._pause(commands, interface, True, self.config.after_call_work_reason)
        return until

    async def after_call_work_until(self, interface: str) -> datetime | None:
        async with self.sessionmaker() as session:
            return await session.scalar(select(Agent.after_call_work_until).where(
                Agent.interface == interface))

    # -- state records ---------------------------------------------------------------------

    async def record_all(self, changes: list[Change]) -> list[dict[str, Any] | None]:
        """Store the changes in order in one transaction; what to publish of each (None:
        not one of our agents). The agents and their open periods are read once for the
        whole batch: a backlog costs a few round trips, not a few per change."""
        interfaces = {change.interface for change in changes}
        async with self.sessionmaker() as session, session.begin():
            agents = {a.interface: a for a in await session.scalars(
                select(Agent).where(Agent.interface.in_(interfaces)))}
            open_periods: dict[int, list[AgentStatePeriod]] = {}
            for period in await session.scalars(select(AgentStatePeriod).where(
                    AgentStatePeriod.agent_id.in_([a.id for a in agents.values()]),
                    AgentStatePeriod.ended_at.is_(None))):
                open_periods.setdefault(period.agent_id, []).append(period)
            return [self._record(session, agents.get(change.interface), open_periods, change)
                    for change in changes]

    @staticmethod
    def _record(session: AsyncSession, agent: Agent | None,
                open_periods: dict[int, list[AgentStatePeriod]], change: Change
                ) -> dict[str, Any] | None:
        """Close the open period, open the new one (none for logged out), keep the current
        state on the agent row."""
        if agent is None:
            return None
        after = change.after
        for period in open_periods.pop(agent.id, ()):
            period.ended_at = change.at
        if after != LOGGED_OUT:
            period = AgentStatePeriod(agent_id=agent.id, state=after.state, reason=after.reason,
                                      queue=after.queue, linkedid=after.linkedid,
                                      started_at=change.at)
            session.add(period)
            open_periods[agent.id] = [period]
        agent.state, agent.state_reason = after.state, after.reason
        agent.state_queue, agent.state_linkedid = after.queue, after.linkedid
        agent.state_since = change.at
        if after.state != "after_call_work":
            agent.after_call_work_until = None
        return {"agent_id": agent.id, "member_name": agent.member_name,
                "interface": change.interface, "state": after.state, "reason": after.reason,
                "queue": after.queue, "since": change.at.isoformat(),
                "previous": change.before.state}

    async def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """``(topic, payload)`` pairs, in order, together."""
        if self.bus is not None and messages:
            await self.bus.publish_many(messages)

    async def stored_states(self) -> list[tuple[str, str, AgentState, list[str]]]:
        """``(interface, member name, state, skill queues)`` of agents not logged out, as
        stored: the board starts from them so a service restart continues their periods."""
        async with self.sessionmaker() as session:
            agents = (await session.scalars(select(Agent).where(
                Agent.state != "logged_out", Agent.interface.is_not(None)))).all()
            return [(a.interface, a.member_name,
                     AgentState(a.state, a.state_reason, a.state_queue, a.state_linkedid),
                     [s.queue for s in await self.skills(session, a.id)]) for a in agents]

    async def restore_members(self, commands: Any, members: tuple[dict[str, str], ...]
                              ) -> list[dict[str, Any]]:
        """Re-add logged-in agents missing from Asterisk's queues (``persistentmembers =
        no``: an Asterisk restart empties them), with their pause; returns who was added."""
        present = {(m.get("Queue"), m.get("Location") or m.get("Interface")) for m in members}
        restored = []
        async with self.sessionmaker(expire_on_commit=False) as session:
            agents = (await session.scalars(select(Agent).where(
                Agent.logged_in.is_(True), Agent.interface.is_not(None)))).all()
            wanted = [(a, await self.skills(session, a.id)) for a in agents]
        for agent, skills in wanted:
            missing = [s for s in skills if (s.queue, agent.interface) not in present]
            for skill in missing:
                paused = agent.paused_reason is not None
                await self._add(commands, agent, skill, paused=paused)
                if paused:
                    await self._pause(commands, agent.interface, True, agent.paused_reason,
                                      skill.queue)
            if missing:
                restored.append({"agent_id": agent.id, "interface": agent.interface,
                                 "queues": [s.queue for s in missing],
                                 "paused_reason": agent.paused_reason})
        return restored

    async def audit(self, principal: Principal, action: str, agent_id: int,
                    fields: list[str], ip: str | None) -> None:
        """A supervisor's action on an agent, in the audit log."""
        async with self.sessionmaker() as session, session.begin():
            await record_access(session, principal, action=action, object_type="agent",
                                object_id=agent_id, fields=fields, ip=ip, clock=self.clock)


async def _asterisk(action: Awaitable[T], *, tolerated: str | None = None) -> T | None:
    """One AMI action: Asterisk's refusal (unless its message contains ``tolerated``) and an
    unreachable Asterisk become the feature's errors."""
    try:
        return await action
    except AmiActionError as exc:
        if tolerated is not None and tolerated in exc.message:
            return None
        raise AsteriskRefused(exc.message) from None
    except (AmiNotConnected, AmiTimeout) as exc:
        raise TelephonyUnavailable(f"Asterisk did not take the action: {exc}") from None


def _need(commands: Any) -> None:
    if commands is None:
        raise TelephonyUnavailable("the phone system is not reachable from this process")
