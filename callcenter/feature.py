"""What a feature is: the parts it adds to each role, described once for the registry.

A feature package (``tickets/``, ``calls/``, ...) exposes ``FEATURE`` in its ``__init__.py``,
naming which of the shape's modules it has; ``registry.FEATURES`` lists them, and the service
wires every role from that one list:
- ``http.py``: ``setup_web(app)`` adds routes (and middleware), in registry order (web role);
- ``listeners.py``: ``listeners(runtime)`` returns telephony listeners, which see every
  domain event in order, in-process (telephony role);
- ``agi.py``: ``async scripts(runtime)`` returns FastAGI scripts by name, built (and
  checked) before the FastAGI server takes calls (telephony role);
- ``workers.py``: ``workers(runtime)`` returns background loops (workers role).
The modules are imported when a role needs them, not by ``__init__.py``: features import each
other's domain modules freely without import cycles. Parts are built from the ``Runtime``
(the process's shared services), never from globals.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from callcenter.bus import Bus
    from callcenter.clock import Clock
    from callcenter.telephony.agi import AgiSession


@dataclass
class Runtime:
    """The shared services of one process, handed to every feature's factories."""

    settings: Any
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: Bus
    clock: Clock
    telephony: Any = None
    """The ``Telephony`` door (AMI command port, FastAGI), in the telephony role only."""
    call_tracker: Any = None
    """The live call model (set by the calls feature's listener): /metrics and the demo."""
    stops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Releases of what parts built (pools, files), run when the service stops."""

    def on_stop(self, release: Callable[[], Awaitable[None]]) -> None:
        """Have ``release`` run when the service stops (newest first)."""
        self.stops.append(release)


class Listener(Protocol):
    """A telephony listener: started before the AMI connection, called for every domain
    event in order (it must not block), stopped after the connection closed."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def __call__(self, event: Any) -> None: ...


@dataclass(frozen=True)
class Worker:
    """A background loop: ``run(stop)`` works until ``stop`` is set, then returns."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]


AgiScript = Callable[["AgiSession"], Awaitable[None]]
"""A FastAGI script, served at ``agi://host:port/<name>``."""


@dataclass(frozen=True)
class Feature:
    """One feature package under ``callcenter/`` and the parts (modules) it has."""

    name: str
    http: bool = False
    listeners: bool = False
    agi: bool = False
    workers: bool = False

    def module(self, part: str) -> ModuleType:
        """The feature's ``part`` module (``http``, ``listeners``, ``agi``, ``workers``)."""
        return importlib.import_module(f"callcenter.{self.name}.{part}")

    def setup_web(self, app: web.Application) -> None:
        if self.http:
            self.module("http").setup_web(app)

    def build_listeners(self, runtime: Runtime) -> Sequence[Listener]:
        return self.module("listeners").listeners(runtime) if self.listeners else ()

    async def agi_scripts(self, runtime: Runtime) -> Mapping[str, AgiScript]:
        return await self.module("agi").scripts(runtime) if self.agi else {}

    def build_workers(self, runtime: Runtime) -> Sequence[Worker]:
        return self.module("workers").workers(runtime) if self.workers else ()
