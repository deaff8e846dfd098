"""Choose the bus from the settings: in-process alone, Redis to share across processes."""

from __future__ import annotations

import os
import socket
from typing import Any

from callcenter.bus.base import Bus
from callcenter.bus.memory import MemoryBus
from callcenter.bus.redis import RedisBus


def create_bus(settings: Any, role: str = "all") -> Bus:
    """A bus (not started) for ``settings.bus``; ``role`` names the Redis connections."""
    cfg = settings.bus
    if cfg.backend == "memory":
        return MemoryBus(subscriber_queue_size=cfg.subscriber_queue_size,
                         redelivery_timeout=cfg.redelivery_timeout)
    password = cfg.redis_password.get_secret_value() if cfg.redis_password else None
    return RedisBus(
        cfg.redis_url, cfg.redis_prefix, password=password,
        events_channel=cfg.events_channel, jobs_stream=cfg.jobs_stream,
        subscriber_queue_size=cfg.subscriber_queue_size,
        redelivery_timeout=cfg.redelivery_timeout,
        client_name=f"callcenter-{role}-{socket.gethostname()}-{os.getpid()}",
    )
