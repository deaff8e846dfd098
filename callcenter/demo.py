"""``callcenter demo``: the simulated Asterisk, the service and generated calls together.

Everything runs in one process on the embedded defaults (SQLite file, in-process bus), so a
newcomer sees calls flowing within a minute with nothing else installed. The configured
ports are used when free (AMI 5038, FastAGI 4573, web 8080); taken ones are replaced by
free ones and the summary says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from callcenter.service import Service, _signals_set
from callcenter.settings import Settings

STATUS_EVERY = 10.0  # seconds between progress lines
DEMO_AGENTS = 5
MAX_DEMO_AGENTS = 100
HANDLING_MINUTES = 1.6
"""About the demo callers' average IVR + talk time: agents are sized so the queue stays short
(offered load in Erlangs = calls per minute x minutes per call)."""


def demo_agents(calls_per_minute: float) -> int:
    return min(MAX_DEMO_AGENTS, max(DEMO_AGENTS, math.ceil(calls_per_minute * HANDLING_MINUTES)))


def _port_or_free(host: str, wanted: int) -> int:
    """``wanted`` when it can be bound on ``host``, else a free port from the OS."""
    for port in (wanted, 0):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host}")


def demo_settings(settings: Settings) -> Settings:
    """The service's settings on free ports (AMI is filled in once the simulator runs)."""
    agi_port = _port_or_free(settings.agi.host, settings.agi.port)
    web_port = _port_or_free(settings.web.host, settings.web.port)
    return settings.model_copy(update={
        "agi": settings.agi.model_copy(update={"port": agi_port}),
        "web": settings.web.model_copy(update={"port": web_port}),
    })


def simulator_config(settings: Settings) -> Any:
    """The simulator with an AMI account matching the service's credentials, sending its
    FastAGI requests to the service's port."""
    from callcenter.simulator.config import AmiUserConfig

    sim = settings.simulator
    user = AmiUserConfig(username=settings.ami.username, secret=settings.ami.secret)
    return sim.model_copy(update={
        "port": _port_or_free(sim.host, sim.port),
        "users": [*sim.users, user],
        "agi_host": settings.agi.host if settings.agi.host != "0.0.0.0" else "127.0.0.1",
        "agi_port": settings.agi.port,
    })


def attached_to(settings: Settings, sim: Any) -> Settings:
    """The service pointed at the running simulator: its AMI port, its CDR file for the
    back-fill of calls made while the service was not listening, its sounds folder, where
    the IVR installs its prompts, and its monitor folder, where recordings are taken over."""
    ami = settings.ami.model_copy(update={"host": "127.0.0.1", "port": sim.ami_port})
    calls = settings.calls.model_copy(update={"cdr_csv": sim.cdr_csv_path,
                                              "cdr_timezone": "UTC"})
    ivr = settings.ivr.model_copy(update={"sounds_dir": sim.config.sounds_dir})
    recordings = settings.recordings.model_copy(update={
        "monitor_dir": sim.config.recordings_dir,  # where its MixMonitor writes
        "asterisk_monitor_dir": sim.config.monitor_dir})  # the path it reports
    return settings.model_copy(update={"ami": ami, "calls": calls, "ivr": ivr,
                                       "recordings": recordings})


async def run_demo(settings: Settings, *, duration: float | None = None,
                   calls_per_minute: float = 12.0, echo: Callable[[str], None] = print) -> None:
    """Run until Ctrl-C (or ``duration`` seconds), printing where to look and progress."""
    from callcenter.simulator.scenario import Simulator
    from callcenter.simulator.traffic import login_agents, run_traffic

    stop = asyncio.Event()
    settings = demo_settings(settings)
    with _signals_set(stop):
        sim = Simulator(simulator_config(settings))
        await sim.start()
        try:
            service = Service(attached_to(settings, sim), upgrade=True)
            await service.start()
            try:
                agents = demo_agents(calls_per_minute)
                login_agents(sim, agents)
                desk = await demo_desk(service, sim)
                revisits = await demo_revisits(service, sim)
                _print_guide(echo, service, sim.ami_port, desk, revisits)
                echo(f"{agents} agents answer queue hotline; about {calls_per_minute:g} "
                     "citizens call per minute")
                traffic = asyncio.create_task(run_traffic(sim, stop, calls_per_minute))
                await _report_until(stop, duration, service, traffic, echo)
                stats = await traffic
                echo(f"demo stopped: {stats.placed} calls placed, {stats.ended} ended")
            finally:
                await service.stop()
        finally:
            await sim.stop()


async def _report_until(stop: asyncio.Event, duration: float | None, service: Service,
                        traffic: asyncio.Task[Any], echo: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    end = None if duration is None else loop.time() + duration
    while not stop.is_set():
        wait = STATUS_EVERY if end is None else max(0.0, min(STATUS_EVERY, end - loop.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if traffic.done():
            stop.set()
        echo(await _status_line(service))
        if end is not None and loop.time() >= end:
            stop.set()


async def _status_line(service: Service) -> str:
    from callcenter.calls.models import CallLog

    assert service.sessionmaker is not None
    async with service.sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(CallLog))
    tracker = service.tracker
    telephony = service.telephony
    live = "live calls 0"
    if tracker is not None and tracker.live_calls:
        now = tracker.live_summary()
        live = (f"live calls {tracker.live_calls} (talking {now['talking']}, "
                f"waiting in queue {now['queued']}, IVR or ringing {now['other']})")
    return (f"AMI {'connected' if telephony and telephony.connected else 'DOWN'} · "
            f"{live} · call log rows {rows}")


DESK_USER, DESK_EXTENSION = "agent", "1999"


async def demo_desk(service: Service, sim: Any) -> str:
    """An agent for the desktop page: user ``agent`` (a new password each demo, returned),
    on softphone 1999, which the simulator answers after a ring; not in any queue until
    someone logs in on the page."""
    from callcenter.auth.models import User
    from callcenter.auth.principal import Role
    from callcenter.auth.users import create_user, generate_password, set_password
    from callcenter.queues.service import AgentService, Skill
    from callcenter.simulator.actors import Agent

    settings, clock = service.settings, service.clock
    password = generate_password(DESK_USER, settings.auth.password_policy())
    agents = AgentService(service.sessionmaker, clock, settings.queues, service.bus)
    async with service.sessionmaker() as session, session.begin():
        user = await session.scalar(select(User).where(User.username == DESK_USER))
        if user is None:
            user = await create_user(session, username=DESK_USER, password=password,
                                     role=Role.AGENT, clock=clock)
        else:
            await set_password(user, password, clock)
        await session.flush()
        await agents.save_agent(session, user_id=user.id, extension=DESK_EXTENSION,
                                skills=[Skill(q.name, 5) for q in settings.queues.queue])
    sim.add_agent(f"PJSIP/{DESK_EXTENSION}", Agent(name="Demo desk", answer_after=3.0))
    return password


def _print_guide(echo: Callable[[str], None], service: Service, ami_port: int,
                 desk_password: str, revisits: int) -> None:
    settings = service.settings
    web = f"http://{settings.web.host}:{service.web_port}"
    lines = [
        "",
        "callcenter demo: a simulated Asterisk, the service and citizens calling 12345",
        f"  pages       {web}/ui/ (log in as admin, below): wallboard {web}/ui/wallboard · "
        f"dashboard {web}/ui/dashboard · monthly report {web}/ui/report · "
        f"tickets {web}/ui/tickets",
        f"  desktop     {web}/ui/desktop as user {DESK_USER} password {desk_password}: log in "
        f"on softphone {DESK_EXTENSION} (it answers by itself) and calls pop up",
        f"  health      {web}/healthz",
        f"  metrics     {web}/metrics",
        f"  API         {web}/api/v1/  (log in: POST {web}/api/v1/auth/login)",
        f"  call log    table call_log in {settings.database.url}",
        f"  simulator   AMI on 127.0.0.1:{ami_port} "
        f"(user {settings.ami.username}); FastAGI served on port {settings.agi.port}",
        f"  IVR         flow {settings.ivr.flows_dir}/{settings.ivr.flow}.toml "
        f"(key 9: English); announcements: PUT {web}/api/v1/ivr/announcements/holiday",
        f"  tickets     {web}/api/v1/tickets · timeline, dispatch, revisit ... "
        f"(documented in {web}/api/v1/openapi.json)",
        f"  recordings  taken over into {settings.recordings.store_dir} as calls end; "
        f"{web}/api/v1/tickets/{{id}}/recordings",
        f"  reports     {web}/api/v1/reports/figures?start=...&end=... · "
        "`callcenter report monthly YYYY-MM` (HTML + PDF)",
        f"  speech      each recording is transcribed as the call ends, with a ticket draft: "
        f"{web}/api/v1/calls/{{linkedid}}/transcripts · "
        "`callcenter transcribe ../shared/speech-samples`",
        f"  revisits    campaign {DEMO_CAMPAIGN!r} dials {revisits} citizens now (keypad "
        f"survey; one busy, one not answering): {web}/ui/campaigns · more: POST "
        f"{web}/api/v1/revisit/tickets/{{id}}",
    ]
    admin = settings.auth.initial_admin_username
    if service.generated_admin_password:
        lines.append(f"  admin       user {admin} password {service.generated_admin_password}")
    else:
        lines.append(f"  admin       user {admin}: its password was printed by the first "
                     "demo on this database")
    lines += ["Ctrl-C stops the demo.", ""]
    for line in lines:
        echo(line)


DEMO_CAMPAIGN = "demo"
DEMO_CITIZENS = (("13900000001", "answer", "11"),  # satisfied, solved: archived
                 ("13900000002", "answer", "32"),  # unsatisfied, not solved: office review
                 ("13900000003", "busy", ""),      # tried again a minute later
                 ("13900000004", "noanswer", ""))  # tried again two minutes later


async def demo_revisits(service: Service, sim: Any) -> int:
    """Consultations answered at once, each with a revisit due now in campaign ``demo``
    (open day and night, so the demo dials whatever the hour); the simulated citizens press
    the survey's keys, are busy or do not answer. Returns how many were scheduled."""
    from callcenter.revisit.config import WEEKDAYS, CampaignSettings
    from callcenter.revisit.service import RevisitService
    from callcenter.simulator.actors import Destination
    from callcenter.tickets.models import TicketType
    from callcenter.tickets.schemas import CallerIn, DirectAnswerIn, DraftIn
    from callcenter.tickets.service import TicketService

    settings, clock = service.settings, service.clock
    assert service.sessionmaker is not None
    tickets = TicketService.from_config(service.sessionmaker, clock, settings.tickets)
    revisits = RevisitService(service.sessionmaker, clock, settings.revisit, tickets)
    campaign = next((c for c in await revisits.campaigns() if c.name == DEMO_CAMPAIGN), None)
    if campaign is None:
        campaign = await revisits.save_campaign(DEMO_CAMPAIGN, CampaignSettings(
            windows={day: (0, 24) for day in WEEKDAYS}, working_days_only=False, max_lines=2,
            retry_busy_seconds=60, retry_no_answer_seconds=120))
    office = await revisits.system_principal()
    for number, mode, keys in DEMO_CITIZENS:
        sim.add_destination(number, Destination(mode=mode, keys=keys))
        draft = await tickets.create_draft(office, DraftIn(
            caller=CallerIn(name="市民", phone=number), ticket_type=TicketType.CONSULTATION,
            topic="municipal_works", title="路灯报修怎么办理",
            content="小区门口路灯不亮，想问怎么报修。"))
        await tickets.register(office, draft.id)
        await tickets.direct_answer(office, draft.id, DirectAnswerIn(
            answer="可拨打12345或在政务服务平台提交路灯报修，三个工作日内修复。"))
        await revisits.schedule(draft.id, campaign.id)
    return len(DEMO_CITIZENS)
