"""Operational endpoints: ``GET /healthz`` (is this process able to serve?) and
``GET /metrics`` (Prometheus text). Neither shows personal data.

Each app owns its own Prometheus registry, so several apps in one test process never
collide and a scrape sees only this process's numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from callcenter.web.keys import BUS, SESSIONMAKER, SETTINGS, TELEPHONY

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The process's metrics; the registry is what ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ami_connected = Gauge(
            "callcenter_ami_connected", "1 when the AMI session to Asterisk is up",
            registry=self.registry)
        self.events_processed = Counter(
            "callcenter_events_processed", "Domain events produced from AMI, by topic",
            ["topic"], registry=self.registry)
        self.calls_active = Gauge(
            "callcenter_calls_active", "Calls (Linkedids) currently live", registry=self.registry)
        self.http_requests = Counter(
            "callcenter_http_requests", "HTTP requests by method, route and status",
            ["method", "route", "status"], registry=self.registry)
        self.http_latency = Histogram(
            "callcenter_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], registry=self.registry)
        # Per queue, set by the queues feature's live feed (web role) as its records change.
        self.queue_waiting = Gauge(
            "callcenter_queue_waiting_callers", "Callers waiting in the queue now",
            ["queue"], registry=self.registry)
        self.queue_available_agents = Gauge(
            "callcenter_queue_available_agents", "Agents logged in, not paused, not on a call",
            ["queue"], registry=self.registry)
        self.queue_service_level = Gauge(
            "callcenter_queue_service_level_percent",
            "Today's calls answered within the target, percent of answered calls",
            ["queue"], registry=self.registry)

    def count_event(self, event: Any) -> None:
        """A telephony listener: one increment per domain event."""
        self.events_processed.labels(topic=getattr(event, "topic", type(event).__name__)).inc()


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by its route pattern (not its raw path: no PII)."""
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_label(request)
        metrics.http_requests.labels(request.method, route, str(status)).inc()
        metrics.http_latency.labels(request.method, route).observe(time.perf_counter() - started)


async def _check_database(app: web.Application) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with app[SESSIONMAKER]() as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means down; the reason goes to the log only
        log.warning("health database down error=%r", exc)
        return {"ok": False, "required": True}
    return {"ok": True, "required": True}


async def _check_bus(app: web.Application) -> dict[str, Any]:
    backend = app[SETTINGS].bus.backend
    ok = await app[BUS].ping()
    return {"ok": ok, "required": backend == "redis", "backend": backend}


def _check_ami(app: web.Application) -> dict[str, Any]:
    telephony = app.get(TELEPHONY)
    if telephony is None:  # telephony runs in another process (``--role``)
        return {"ok": None, "required": False, "in_process": False}
    return {"ok": bool(telephony.connected), "required": True, "in_process": True}


def _check_speech(app: web.Application) -> dict[str, Any]:
    """Speech-to-text models: a missing one is reported, never a reason to be down."""
    from callcenter.speech.recognizer import model_problem

    speech = getattr(app.get(SETTINGS), "speech", None)
    if speech is None:
        return {"ok": None, "required": False}
    problems = {language: problem for language, path in speech.models.items()
                if (problem := model_problem(path)) is not None}
    return {"ok": not problems, "required": False, "languages": sorted(speech.models),
            "missing": sorted(problems), "problems": problems}


async def healthz(request: web.Request) -> web.Response:
    """200 when every required part is up, 503 otherwise; each part's state in the body."""
    app = request.app
    database, bus = await asyncio.gather(_check_database(app), _check_bus(app))
    checks = {"database": database, "bus": bus, "ami": _check_ami(app),
              "speech": _check_speech(app)}
    healthy = all(c["ok"] for c in checks.values() if c["required"])
    body = {"status": "ok" if healthy else "down", "checks": checks}
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def _telephony_metrics(app: web.Application) -> Callable[[web.Application],
                                                          AsyncIterator[None]]:
    async def context(_app: web.Application) -> AsyncIterator[None]:
        """Listen to telephony while the app runs; stop listening when it closes."""
        telephony = app[TELEPHONY]
        counter = app[METRICS].count_event
        telephony.add_listener(counter)
        yield
        telephony.remove_listener(counter)

    return context


def setup_health(app: web.Application,
                 live_calls: Callable[[], int] | None = None) -> Metrics:
    """Add ``/healthz``, ``/metrics`` and the request metrics middleware."""
    registry = Metrics()
    app[METRICS] = registry
    app.middlewares.insert(0, metrics_middleware)
    telephony = app.get(TELEPHONY)
    if telephony is not None:
        registry.ami_connected.set_function(lambda: 1.0 if telephony.connected else 0.0)
        app.cleanup_ctx.append(_telephony_metrics(app))
    if live_calls is not None:
        registry.calls_active.set_function(lambda: float(live_calls()))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return registry
