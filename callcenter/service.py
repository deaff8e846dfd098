"""Wires ``callcenter serve``: settings → logging → store → bus → telephony → workers → web.

One process runs every role by default (the embedded setup); ``roles`` picks a subset so
the same code scales out: ``web`` processes behind a load balancer, one ``telephony``
process per Asterisk, ``workers`` for background jobs, all sharing PostgreSQL and Redis.
Components start in dependency order and stop in reverse, so nothing is told about an
event after the thing that stores it has gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.auth.users import InsecureConfigError, check_production_config, ensure_initial_admin
from callcenter.bus import Bus
from callcenter.bus.base import BusError
from callcenter.bus.factory import create_bus
from callcenter.clock import Clock, SystemClock
from callcenter.feature import Runtime, Worker
from callcenter.registry import FEATURES
from callcenter.settings import ROLES, Settings
from callcenter.store import migrations
from callcenter.store.engine import create_sessionmaker, engine_from_settings
from callcenter.telephony.service import Telephony
from callcenter.web.app import create_app, serve_app

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start as configured (the message says what to do)."""


async def prepare_database(settings: Settings, upgrade: bool = False) -> str | None:
    """Migrate an empty database; refuse one that is behind unless told to upgrade.

    Returns the revision the database is at afterwards.
    """
    url = settings.database.effective_url()
    try:
        state = await migrations.state(url)
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise StartupError(f"cannot reach the database {shown}: {exc}") from exc
    if state.unmanaged:
        raise StartupError("the database has tables but no migration history; "
                           "point database.url at an empty database or a callcenter one")
    if state.empty:
        log.info("database empty, creating schema head=%s", state.head)
        await migrations.upgrade(url)
        return state.head
    if state.up_to_date:
        return state.current
    if not migrations.is_known(state.current):
        raise StartupError(f"the database is at revision {state.current}, which this "
                           "version does not know (is it newer code's database?)")
    if upgrade or settings.database.auto_upgrade:
        log.info("database behind, upgrading from=%s to=%s", state.current, state.head)
        await migrations.upgrade(url)
        return state.head
    raise StartupError(f"the database is at revision {state.current} but this version needs "
                       f"{state.head}: run `callcenter db upgrade` (or serve --upgrade)")


class Service:
    """The running components of one process; ``start()`` then ``stop()``."""

    def __init__(self, settings: Settings, *, roles: list[str] | None = None,
                 upgrade: bool = False, clock: Clock | None = None) -> None:
        self.settings = settings
        self.roles = list(roles or settings.service.roles)
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise StartupError(f"unknown role(s) {sorted(unknown)}; known: {list(ROLES)}")
        self.clock = clock or SystemClock()
        self._upgrade = upgrade
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.bus: Bus | None = None
        self.runtime: Runtime | None = None
        self.runner: Any = None
        self.generated_admin_password: str | None = None
        self._stops: list[Callable[[], Awaitable[None]]] = []

    @property
    def telephony(self) -> Any:
        """The door to Asterisk (telephony role), or None."""
        return self.runtime.telephony if self.runtime else None

    @property
    def tracker(self) -> Any:
        """The live call model (telephony role), or None."""
        return self.runtime.call_tracker if self.runtime else None

    @property
    def web_port(self) -> int | None:
        """The port the web app listens on (useful with port 0)."""
        if self.runner is None or not self.runner.addresses:
            return None
        return int(self.runner.addresses[0][1])

    async def start(self) -> None:
        if len(self.roles) < len(ROLES) and self.settings.bus.backend == "memory":
            log.warning("roles=%s run without the others on the in-process bus: processes "
                        "share nothing but the database; set bus.backend = \"redis\" to "
                        "split roles across processes", ",".join(self.roles))
        try:
            await self._start_store()
            await self._start_bus()
            self.runtime = Runtime(self.settings, self.sessionmaker, self.bus, self.clock)
            if "telephony" in self.roles:
                await self._start_telephony()
            if "workers" in self.roles:
                await self._start_workers()
            if "web" in self.roles:
                await self._start_web()
        except BaseException:
            await self.stop()
            raise
        log.info("service started roles=%s web_port=%s", ",".join(self.roles), self.web_port)

    async def stop(self) -> None:
        """Stop what started, newest first; a failing stop does not skip the others."""
        while self._stops:
            stop = self._stops.pop()
            try:
                await stop()
            except Exception:
                log.exception("service component failed to stop component=%r", stop)
        log.info("service stopped")

    async def _start_store(self) -> None:
        await prepare_database(self.settings, self._upgrade)
        self.engine = engine_from_settings(self.settings.database)
        self.sessionmaker = create_sessionmaker(self.engine)
        self._stops.append(self.engine.dispose)
        await self._ensure_admin()

    async def _ensure_admin(self) -> None:
        """Auth's start checks: production secrets strong enough, a first admin exists."""
        production = self.settings.service.mode == "production"
        try:
            if production:
                check_production_config(self.settings.auth)
            self.generated_admin_password = await ensure_initial_admin(
                self.sessionmaker, self.settings.auth, production=production, clock=self.clock)
        except InsecureConfigError as exc:
            raise StartupError(str(exc)) from exc

    async def _start_bus(self) -> None:
        role = "all" if len(self.roles) == len(ROLES) else "+".join(self.roles)
        self.bus = create_bus(self.settings, role)
        try:
            await self.bus.start()
        except BusError as exc:
            raise StartupError(str(exc)) from exc
        self._stops.append(self.bus.close)

    async def _start_telephony(self) -> None:
        """Every feature's listeners start before the AMI connection (so they see every
        event) and its FastAGI scripts are routed before the server accepts calls."""
        runtime = self.runtime
        assert runtime is not None
        runtime.telephony = Telephony(self.settings.ami, self.settings.agi, self.bus,
                                      self.clock)
        for feature in FEATURES:
            for listener in feature.build_listeners(runtime):
                await listener.start()
                self._stops.append(listener.stop)
                runtime.telephony.add_listener(listener)
            for name, script in (await feature.agi_scripts(runtime)).items():
                runtime.telephony.agi.route(name, script)
        self._adopt_releases()
        self._stops.append(runtime.telephony.stop)
        await runtime.telephony.start()

    async def _start_workers(self) -> None:
        """Every feature's background workers (the supervision scheduler...)."""
        assert self.runtime is not None
        for feature in FEATURES:
            for worker in feature.build_workers(self.runtime):
                self._stops.append(self._background(worker))
        self._adopt_releases()

    def _adopt_releases(self) -> None:
        """What the parts built is released when the service stops (``Runtime.on_stop``)."""
        assert self.runtime is not None
        self._stops.extend(self.runtime.stops)
        self.runtime.stops.clear()

    def _background(self, worker: Worker) -> Callable[[], Awaitable[None]]:
        """Start ``worker.run(stop)`` as a task; returns the coroutine function that stops
        it."""
        stop = asyncio.Event()
        name = worker.name
        task = asyncio.create_task(worker.run(stop), name=name)

        async def halt() -> None:
            stop.set()
            try:
                await asyncio.wait_for(task, 10.0)
            except TimeoutError:
                log.warning("background task did not stop in time name=%s", name)

        return halt

    async def _start_web(self) -> None:
        assert self.sessionmaker is not None and self.bus is not None
        tracker = self.tracker
        app = create_app(self.settings, self.sessionmaker, self.bus, self.clock,
                         self.telephony,
                         live_calls=(lambda: tracker.live_calls) if tracker else None)
        self.runner = await serve_app(app, self.settings.web.host, self.settings.web.port)
        self._stops.append(self.runner.cleanup)


async def run_service(settings: Settings, *, roles: list[str] | None = None,
                      upgrade: bool = False, stop: asyncio.Event | None = None,
                      started: Callable[[Service], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    with _signals_set(stop):
        service = Service(settings, roles=roles, upgrade=upgrade)
        await service.start()
        try:
            if started is not None:
                started(service)
            await stop.wait()
            log.info("service stopping")
        finally:
            await service.stop()


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Any:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
