"""The internal bus: live fan-out of domain events and durable job queues."""

from callcenter.bus.base import Bus, Job

__all__ = ["Bus", "Job"]
