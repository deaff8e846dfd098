"""The internal bus: live fan-out of domain events and durable job queues."""

from callcenter.bus.base import Bus, BusError, Job, Subscription

__all__ = ["Bus", "BusError", "Job", "Subscription"]
