"""Agents and queues over HTTP: an agent's own login, pause and state; supervisors' view of
every agent and their actions on one (each audited); the live wallboard.

Actions that reach Asterisk need the telephony role in this process: without it (or while
Asterisk is unreachable) they answer 409 ``telephony_unavailable`` and change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.auth.principal import Principal, Role
from callcenter.queues.config import QueuesConfig
from callcenter.queues.service import AgentService, AgentView, Skill
from callcenter.queues.wallboard import Wallboard
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER, SETTINGS, TELEPHONY
from callcenter.web.request import API_PREFIX, client_ip, path_int
from callcenter.web.routing import Api

log = logging.getLogger(__name__)

API = Api()
AGENTS: web.AppKey[AgentService] = web.AppKey("queues_agents", AgentService)
WALLBOARD: web.AppKey[Wallboard] = web.AppKey("queues_wallboard", Wallboard)
TASKS: web.AppKey[set] = web.AppKey("queues_tasks", set)
ME = f"{API_PREFIX}/agents/me"
ONE = f"{API_PREFIX}/agents/{{agent_id}}"
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)


class SkillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str = Field(min_length=1, max_length=64)
    level: int = Field(ge=1, le=10)


class AgentIn(BaseModel):
    """An agent profile: the user (role agent), the usual softphone, skills per queue."""

    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(ge=1)
    extension: str = Field(pattern=r"^[0-9]{2,8}$")
    skills: list[SkillIn] = Field(min_length=1, max_length=50)


class SkillsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skills: list[SkillIn] = Field(min_length=1, max_length=50)


class LoginIn(BaseModel):
    """The softphone to log in on (digits; default: the profile's extension)."""

    model_config = ConfigDict(extra="forbid")
    extension: str | None = Field(default=None, pattern=r"^[0-9]{2,8}$")


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=64)


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: int = Field(default=60, ge=1, le=3600)


class AgentOut(BaseModel):
    id: int
    user_id: int
    member_name: str
    extension: str
    interface: str | None
    logged_in: bool
    skills: list[SkillIn]
    state: str
    reason: str | None
    queue: str | None
    since: datetime | None
    seconds_in_state: float | None
    after_call_work_until: datetime | None

    @classmethod
    def of(cls, view: AgentView, now: datetime) -> AgentOut:
        seconds = None if view.since is None else round((now - view.since).total_seconds(), 3)
        return cls(id=view.id, user_id=view.user_id, member_name=view.member_name,
                   extension=view.extension, interface=view.interface,
                   logged_in=view.logged_in,
                   skills=[SkillIn(queue=s.queue, level=s.level) for s in view.skills],
                   state=view.state, reason=view.reason, queue=view.queue, since=view.since,
                   seconds_in_state=seconds, after_call_work_until=view.after_call_work_until)


class AgentList(BaseModel):
    agents: list[AgentOut]


class QueueFigures(BaseModel):
    queue: str
    waiting: int
    longest_wait_seconds: float
    offered: int
    answered: int
    abandoned: int
    timeouts: int
    other_exits: int
    answered_within_target: int
    service_level: float | None
    average_speed_of_answer: float | None
    average_handle_time: float | None
    abandon_rate: float | None
    per_quarter_hour: dict[str, int]


class WallboardOut(BaseModel):
    day: str
    service_level_seconds: int
    queues: list[QueueFigures]


def _commands(request: web.Request) -> Any:
    telephony = request.app.get(TELEPHONY)
    return None if telephony is None else telephony.commands


async def _out(request: web.Request, agent_id: int) -> AgentOut:
    service = request.app[AGENTS]
    async with request.app[SESSIONMAKER]() as session:
        view = await service.view(session, await service.agent(session, agent_id))
    return AgentOut.of(view, request.app[CLOCK].now())


async def _my_id(request: web.Request, principal: Principal) -> int:
    async with request.app[SESSIONMAKER]() as session:
        return (await request.app[AGENTS].agent_of_user(session, principal.user_id)).id


# -- the agent's own ----------------------------------------------------------------------

@API.route("GET", ME, summary="My agent state", roles=(Role.AGENT,), response=AgentOut)
async def get_me(request: web.Request, principal: Principal, _: None) -> AgentOut:
    return await _out(request, await _my_id(request, principal))


@API.route("POST", ME + "/login", summary="Log in to my queues on a softphone",
           roles=(Role.AGENT,), body=LoginIn, response=AgentOut)
async def post_login(request: web.Request, principal: Principal, body: LoginIn) -> AgentOut:
    agent_id = await _my_id(request, principal)
    await request.app[AGENTS].login(_commands(request), agent_id, body.extension)
    return await _out(request, agent_id)


@API.route("POST", ME + "/logout", summary="Log out of my queues", roles=(Role.AGENT,),
           response=AgentOut)
async def post_logout(request: web.Request, principal: Principal, _: Any) -> AgentOut:
    agent_id = await _my_id(request, principal)
    await request.app[AGENTS].logout(_commands(request), agent_id)
    return await _out(request, agent_id)


@API.route("POST", ME + "/pause", summary="Pause with a reason (in every queue)",
           roles=(Role.AGENT,), body=PauseIn, response=AgentOut)
async def post_pause(request: web.Request, principal: Principal, body: PauseIn) -> AgentOut:
    agent_id = await _my_id(request, principal)
    await request.app[AGENTS].pause(_commands(request), agent_id, body.reason)
    return await _out(request, agent_id)


@API.route("POST", ME + "/unpause", summary="Take calls again (ends after-call work too)",
           roles=(Role.AGENT,), response=AgentOut)
async def post_unpause(request: web.Request, principal: Principal, _: Any) -> AgentOut:
    agent_id = await _my_id(request, principal)
    await request.app[AGENTS].unpause(_commands(request), agent_id)
    return await _out(request, agent_id)


@API.route("POST", ME + "/after-call-work/extend", summary="More after-call work time",
           roles=(Role.AGENT,), body=ExtendIn, response=AgentOut)
async def post_extend(request: web.Request, principal: Principal, body: ExtendIn) -> AgentOut:
    agent_id = await _my_id(request, principal)
    await request.app[AGENTS].extend_after_call_work(agent_id, body.seconds)
    return await _out(request, agent_id)


# -- supervisors --------------------------------------------------------------------------

@API.route("GET", f"{API_PREFIX}/agents", summary="Every agent with state and time in state",
           roles=SUPERVISORS, response=AgentList)
async def get_agents(request: web.Request, _: Principal, __: None) -> AgentList:
    async with request.app[SESSIONMAKER]() as session:
        views = await request.app[AGENTS].list_views(session)
    now = request.app[CLOCK].now()
    return AgentList(agents=[AgentOut.of(v, now) for v in views])


@API.route("POST", f"{API_PREFIX}/agents", summary="Create or update an agent profile",
           roles=SUPERVISORS, body=AgentIn, response=AgentOut)
async def post_agent(request: web.Request, principal: Principal, body: AgentIn) -> AgentOut:
    service = request.app[AGENTS]
    async with request.app[SESSIONMAKER](expire_on_commit=False) as session, session.begin():
        agent = await service.save_agent(session, user_id=body.user_id,
                                         extension=body.extension,
                                         skills=[Skill(s.queue, s.level) for s in body.skills])
    await service.audit(principal, "agent.save", agent.id, ["extension", "skills"],
                        client_ip(request))
    return await _out(request, agent.id)


@API.route("POST", ONE + "/pause", summary="Pause an agent (audited)", roles=SUPERVISORS,
           body=PauseIn, response=AgentOut)
async def post_agent_pause(request: web.Request, principal: Principal, body: PauseIn
                           ) -> AgentOut:
    agent_id = path_int(request, "agent_id")
    await request.app[AGENTS].pause(_commands(request), agent_id, body.reason)
    await request.app[AGENTS].audit(principal, "agent.pause", agent_id,
                                    [f"reason:{body.reason}"], client_ip(request))
    return await _out(request, agent_id)


@API.route("POST", ONE + "/logout", summary="Log an agent out (audited)", roles=SUPERVISORS,
           response=AgentOut)
async def post_agent_logout(request: web.Request, principal: Principal, _: Any) -> AgentOut:
    agent_id = path_int(request, "agent_id")
    await request.app[AGENTS].logout(_commands(request), agent_id)
    await request.app[AGENTS].audit(principal, "agent.logout", agent_id, [],
                                    client_ip(request))
    return await _out(request, agent_id)


@API.route("PUT", ONE + "/skills", summary="Move an agent between queues, live (audited)",
           roles=SUPERVISORS, body=SkillsIn, response=AgentOut)
async def put_agent_skills(request: web.Request, principal: Principal, body: SkillsIn
                           ) -> AgentOut:
    agent_id = path_int(request, "agent_id")
    skills = [Skill(s.queue, s.level) for s in body.skills]
    await request.app[AGENTS].set_skills(_commands(request), agent_id, skills)
    await request.app[AGENTS].audit(principal, "agent.skills", agent_id,
                                    [f"{s.queue}:{s.level}" for s in skills],
                                    client_ip(request))
    return await _out(request, agent_id)


class SpyIn(BaseModel):
    """``mode``: listen, whisper or barge (as configured); ``extension``: the supervisor's
    own phone, rung first."""

    model_config = ConfigDict(extra="forbid")
    mode: str = Field(min_length=1, max_length=16)
    extension: str = Field(pattern=r"^[0-9]{2,8}$")


class SpyOut(BaseModel):
    agent_id: int
    mode: str
    extension: str
    status: str


@API.route("POST", ONE + "/spy", summary="Listen to, whisper to or barge into an agent's "
           "call from your phone (audited)", roles=SUPERVISORS, body=SpyIn, response=SpyOut,
           status=202)
async def post_agent_spy(request: web.Request, principal: Principal, body: SpyIn) -> SpyOut:
    agent_id = path_int(request, "agent_id")
    service = request.app[AGENTS]
    commands = _commands(request)
    agent, options = await service.spy_target(commands, agent_id, body.mode)
    await service.audit(principal, f"agent.{body.mode}", agent_id,
                        [f"extension:{body.extension}"], client_ip(request))
    _spawn(request.app, service.spy(commands, agent, options, body.extension))
    return SpyOut(agent_id=agent_id, mode=body.mode, extension=body.extension,
                  status="dialling")


def _spawn(app: web.Application, coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(_quietly(coro))
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception as exc:  # noqa: BLE001 - the supervisor's phone simply does not ring
        log.warning("queues.spy_failed error=%r", exc)


@API.route("GET", f"{API_PREFIX}/queues/wallboard", summary="Live figures per queue, today",
           roles=SUPERVISORS, response=WallboardOut)
async def get_wallboard(request: web.Request, _: Principal, __: None) -> WallboardOut:
    board = await request.app[WALLBOARD].today()
    return WallboardOut.model_validate(board, from_attributes=True)


def setup_web(app: web.Application, config: QueuesConfig | None = None) -> None:
    settings = app.get(SETTINGS)
    if config is None:
        config = getattr(settings, "queues", None) or QueuesConfig()
    timezone = getattr(getattr(settings, "service", None), "timezone", "Asia/Shanghai")
    app[AGENTS] = AgentService(app[SESSIONMAKER], app[CLOCK], config, app.get(BUS))
    app[WALLBOARD] = Wallboard(app[SESSIONMAKER], app[CLOCK], config, timezone)
    app[TASKS] = set()
    app.on_cleanup.append(_wait_tasks)
    if app.get(BUS) is not None:
        app.cleanup_ctx.append(_follow_waiting)
    API.install(app)


async def _wait_tasks(app: web.Application) -> None:
    if app[TASKS]:
        await asyncio.wait(set(app[TASKS]), timeout=10)


async def _follow_waiting(app: web.Application) -> AsyncIterator[None]:
    """Live waiting counts from the telephony process, for as long as the app runs."""
    task = asyncio.get_running_loop().create_task(app[WALLBOARD].follow(app[BUS]),
                                                  name="queues-wallboard")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
