"""Agents and queues over HTTP: an agent's own login, pause and state; supervisors' view of
every agent and their actions on one (each audited); the live wallboard.

Actions that reach Asterisk need the telephony role in this process: without it (or while
Asterisk is unreachable) they answer 409 ``telephony_unavailable`` and change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.auth.http import current_principal
from callcenter.auth.principal import Principal, Role
from callcenter.queues.callcontrol import CallControl, Target
from callcenter.queues.config import QueuesConfig
from callcenter.queues.feed import OVERFLOW, LiveFeed, Viewer
from callcenter.queues.live import agent_record, live_store
from callcenter.queues.provisioning import Provisioning
from callcenter.queues.screenpop import ScreenPops
from callcenter.queues.service import AgentService, AgentView, Skill
from callcenter.queues.wallboard import Wallboard
from callcenter.tickets.http import TICKETS
from callcenter.web.health import METRICS
from callcenter.web.keys import BUS, CLOCK, PII_POLICY, SESSIONMAKER, SETTINGS, TELEPHONY
from callcenter.web.request import API_PREFIX, client_ip, parse_query, path_int, require_role
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

class QueueOption(BaseModel):
    name: str
    language: str


class TopicOption(BaseModel):
    code: str
    label: str


class DeskOut(BaseModel):
    """What the desk offers to pick from, as configured: pause reasons, the queues a call
    can be transferred to, the ticket topics (level 1 and 2, ``config/taxonomy.toml``)."""

    pause_reasons: list[str]
    queues: list[QueueOption]
    topics: list[TopicOption]


@API.route("GET", ME + "/desk", summary="My desk's choices: pause reasons, queues, topics",
           roles=(Role.AGENT,), response=DeskOut)
async def get_desk(request: web.Request, _: Principal, __: None) -> DeskOut:
    config = request.app[AGENTS].config
    tickets = request.app.get(TICKETS)
    topics = [] if tickets is None else [
        TopicOption(code=code, label=label)
        for top_code, topic in tickets.taxonomy.topics.items()
        for code, label in ((top_code, topic.label), *topic.children.items())]
    return DeskOut(pause_reasons=list(config.pause_reasons),
                   queues=[QueueOption(name=q.name, language=q.language) for q in config.queue],
                   topics=topics)


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
    await _provisioning(request).provision_after_change(_commands(request), agent.id)
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
    setup_live(app)


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


# -- the agent desk: the current call's screen-pop and call control -----------------------
# The same shape is published on the bus as ``queues.screen_pop.<agent_id>`` (screenpop.py).

class TicketRef(BaseModel):
    id: int
    number: str
    status: str
    topic: str | None
    title: str | None
    created_at: datetime


class CallerOut(BaseModel):
    """The calling number and name as the reader's role may see them (``masked``: the
    number is masked or absent)."""

    number: str | None
    name: str | None
    masked: bool


class IvrOut(BaseModel):
    """What the IVR recorded: the path (nodes and keys), the language, the ticket looked
    up, and how the lookup went (``verification``: caller, pin, not_found, mismatch,
    bad_pin, refused; ``verified``: caller or pin)."""

    path: str | None
    language: str | None
    ticket: str | None
    verification: str | None
    verified: bool


class ScreenPopOut(BaseModel):
    """``phase``: offered (ringing), answered, ended (shown during after-call work)."""

    agent_id: int
    linkedid: str
    queue: str
    transferred_by: str | None = None
    """The agent who passed the call on to this phone (None: offered by the queue)."""
    phase: str
    offered_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    caller: CallerOut
    ivr: IvrOut
    open_tickets: list[TicketRef]
    earlier_tickets: list[TicketRef]


class CurrentCallOut(BaseModel):
    call: ScreenPopOut | None


def _pops(request: web.Request) -> ScreenPops:
    return ScreenPops(request.app[SESSIONMAKER], request.app[CLOCK], request.app[PII_POLICY])


@API.route("GET", ME + "/call", summary="My current queue call: the screen-pop (null when "
           "none)", roles=(Role.AGENT,), response=CurrentCallOut)
async def get_my_call(request: web.Request, principal: Principal, _: None) -> CurrentCallOut:
    pops = _pops(request)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        agent = await request.app[AGENTS].agent_of_user(session, principal.user_id)
        pop = await pops.current(session, agent)
        if pop is None:
            return CurrentCallOut(call=None)
        shown = await pops.render(session, pop, principal, ip=client_ip(request))
    return CurrentCallOut(call=ScreenPopOut.model_validate(shown))


# -- the live feed: GET /api/v1/queues/live (websocket) -----------------------------------

LIVE_FEED: web.AppKey[LiveFeed] = web.AppKey("queues_live_feed", LiveFeed)
LIVE_SOCKETS: web.AppKey[set] = web.AppKey("queues_live_sockets", set)
LIVE_PATH = f"{API_PREFIX}/queues/live"
RECHECK_SECONDS = 15.0
"""A live socket re-checks its token and role at the first push after this long."""


class LiveQuery(BaseModel):
    """``since`` and ``feed``: the last ``seq`` and the ``feed`` a reconnecting client saw."""

    model_config = ConfigDict(extra="forbid")
    since: int | None = Field(default=None, ge=0, le=2**53)
    feed: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,32}$")
    access_token: str | None = None


async def live_ws(request: web.Request) -> web.WebSocketResponse:
    """Live queues over a websocket: supervisors get the wallboard and every agent's state,
    an agent its own state and screen-pops. The first message is a ``snapshot``, or, when
    reconnecting with ``?since=<seq>&feed=<feed>`` still in the buffer, ``resumed`` and what
    was missed; then live messages. Types and fields: ``callcenter/queues/feed.py``. The
    socket is closed with 1008 once its token expired or its role changed, with 1013 when
    it fell too far behind, and with 1001 when the service stops (reconnect with
    ``since`` and ``feed``)."""
    principal = require_role(request, Role.AGENT, *SUPERVISORS)
    query = parse_query(request, LiveQuery)
    feed = request.app[LIVE_FEED]
    own = None
    if principal.role == Role.AGENT:
        async with request.app[SESSIONMAKER]() as session:
            own = agent_record(await request.app[AGENTS].agent_of_user(session,
                                                                       principal.user_id))
    await asyncio.wait_for(feed.ready.wait(), 10)
    board = await feed.figures() if own is None else None
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    viewer = Viewer(own["agent_id"] if own else None)
    first = feed.open(viewer, since=query.since, feed=query.feed, board=board, own=own)
    closing = asyncio.Event()
    pump = asyncio.create_task(_pump(request, ws, principal, viewer, first, closing))
    request.app[LIVE_SOCKETS].add(ws)
    try:
        async for message in ws:  # until the client closes; client messages are ignored
            if message.type == WSMsgType.ERROR:
                break
    finally:
        request.app[LIVE_SOCKETS].discard(ws)
        feed.close(viewer)
        if not closing.is_set():  # the client left; a close the pump began must finish, or
            pump.cancel()  # the client gets 1006 instead of the pump's code
        await asyncio.gather(pump, return_exceptions=True)
    return ws


async def _pump(request: web.Request, ws: web.WebSocketResponse, principal: Principal,
                viewer: Viewer, first: list[dict[str, Any]], closing: asyncio.Event) -> None:
    for message in first:
        await ws.send_json(message)
    checked_at = time.monotonic()
    while True:
        message = await viewer.outbox.get()
        if message is OVERFLOW:
            closing.set()
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                           message=b"fell behind: reconnect with since")
            return
        if time.monotonic() - checked_at >= RECHECK_SECONDS:
            now = await current_principal(request)
            if now is None or now.role != principal.role:
                closing.set()
                await ws.close(code=WSCloseCode.POLICY_VIOLATION,
                               message=b"token expired or access changed")
                return
            checked_at = time.monotonic()
        await ws.send_json(message)


def setup_live(app: web.Application) -> None:
    """The live feed and its websocket (needs the bus), and the per-queue gauges."""
    if app.get(BUS) is None:
        return
    store = live_store(app[BUS], app.get(SETTINGS))
    metrics = app.get(METRICS)
    app[LIVE_FEED] = LiveFeed(app[BUS], store, app[WALLBOARD], app[CLOCK], metrics=metrics)
    app[LIVE_SOCKETS] = set()
    app.router.add_get(LIVE_PATH, live_ws)
    app.cleanup_ctx.append(_run_live_feed)
    app.on_shutdown.append(_close_live_sockets)


async def _close_live_sockets(app: web.Application) -> None:
    """A stopping service closes its sockets (1001) so their clients reconnect at once."""
    for ws in list(app[LIVE_SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")


async def _run_live_feed(app: web.Application) -> AsyncIterator[None]:
    feed = app[LIVE_FEED]
    task = asyncio.get_running_loop().create_task(feed.run(), name="queues-live-feed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await feed.store.close()


class TransferIn(BaseModel):
    """Exactly one of ``queue`` (a queue name) or ``extension`` (an agent's phone)."""

    model_config = ConfigDict(extra="forbid")
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    extension: str | None = Field(default=None, pattern=r"^[0-9]{2,8}$")


class CallActionOut(BaseModel):
    """The action was accepted by Asterisk; the call's end and the agent's new state come
    as events (``queues.screen_pop.<agent_id>``, ``queues.agent_state``)."""

    linkedid: str
    action: str
    target: str | None = None


def _control(request: web.Request) -> CallControl:
    return CallControl(request.app[SESSIONMAKER], request.app[CLOCK], request.app[AGENTS].config)


@API.route("POST", ME + "/call/hangup", summary="Hang up my current queue call (audited)",
           roles=(Role.AGENT,), response=CallActionOut)
async def post_call_hangup(request: web.Request, principal: Principal, _: Any
                           ) -> CallActionOut:
    return await _on_my_call(request, principal, CallControl.hangup, "hangup")


@API.route("POST", ME + "/call/blind-transfer", summary="Blind-transfer my current queue "
           "call to a queue or an agent (audited)", roles=(Role.AGENT,), body=TransferIn,
           response=CallActionOut)
async def post_call_blind_transfer(request: web.Request, principal: Principal,
                                   body: TransferIn) -> CallActionOut:
    return await _transfer(request, principal, body, CallControl.blind_transfer,
                           "blind_transfer")


@API.route("POST", ME + "/call/attended-transfer", summary="Hold the caller and call a queue "
           "or an agent first (attended transfer, audited)", roles=(Role.AGENT,),
           body=TransferIn, response=CallActionOut)
async def post_call_attended_transfer(request: web.Request, principal: Principal,
                                      body: TransferIn) -> CallActionOut:
    return await _transfer(request, principal, body, CallControl.attended_transfer,
                           "attended_transfer")


async def _transfer(request: web.Request, principal: Principal, body: TransferIn,
                    transfer: Any, action: str) -> CallActionOut:
    """``transfer``: ``CallControl.blind_transfer`` or ``.attended_transfer``."""
    async with request.app[SESSIONMAKER]() as session:
        agent = await request.app[AGENTS].agent_of_user(session, principal.user_id)
    target = Target(queue=body.queue, extension=body.extension)
    pop = await transfer(_control(request), _commands(request), principal, agent.id, target,
                         agent.extension, client_ip(request))
    return CallActionOut(linkedid=pop.linkedid, action=action, target=target.label())


async def _on_my_call(request: web.Request, principal: Principal, act: Any, action: str
                      ) -> CallActionOut:
    """``act``: a ``CallControl`` action on the agent's answered call alone."""
    pop = await act(_control(request), _commands(request), principal,
                    await _my_id(request, principal), client_ip(request))
    return CallActionOut(linkedid=pop.linkedid, action=action)


@API.route("POST", ME + "/call/attended-transfer/complete", summary="Complete my attended "
           "transfer: I leave, the caller and the target talk (audited)", roles=(Role.AGENT,),
           response=CallActionOut)
async def post_call_transfer_complete(request: web.Request, principal: Principal, _: Any
                                      ) -> CallActionOut:
    return await _on_my_call(request, principal, CallControl.complete_transfer,
                             "attended_transfer_complete")


@API.route("POST", ME + "/call/attended-transfer/cancel", summary="Cancel my attended "
           "transfer: back to the caller (audited)", roles=(Role.AGENT,),
           response=CallActionOut)
async def post_call_transfer_cancel(request: web.Request, principal: Principal, _: Any
                                    ) -> CallActionOut:
    return await _on_my_call(request, principal, CallControl.cancel_transfer,
                             "attended_transfer_cancel")


# -- softphone provisioning (queues/provisioning.py) --------------------------------------

class SoftphoneOut(BaseModel):
    """New SIP credentials for the agent's softphone: the password is shown this once (only
    its digest is kept); ``reloaded``: Asterisk already has the new endpoint."""

    agent_id: int
    username: str
    realm: str
    password: str
    reloaded: bool


def _provisioning(request: web.Request) -> Provisioning:
    return Provisioning(request.app[SESSIONMAKER], request.app[CLOCK],
                        request.app[AGENTS].config)


@API.route("POST", ONE + "/softphone", summary="Issue new softphone credentials for an "
           "agent and provision its endpoint (audited)", roles=SUPERVISORS,
           response=SoftphoneOut)
async def post_agent_softphone(request: web.Request, principal: Principal, _: Any
                               ) -> SoftphoneOut:
    agent_id = path_int(request, "agent_id")
    provisioning = _provisioning(request)
    username, realm, password = await provisioning.issue_password(agent_id)
    await request.app[AGENTS].audit(principal, "agent.softphone", agent_id,
                                    [f"username:{username}"], client_ip(request))
    done = await provisioning.provision_after_change(_commands(request), agent_id)
    return SoftphoneOut(agent_id=agent_id, username=username, realm=realm, password=password,
                        reloaded=done.reloaded)

