"""Settings of the queues feature (section ``[queues]`` of the settings file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class QueueLine(BaseModel):
    """One Asterisk queue (``config/asterisk/queues.conf``) and whom it serves."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    language: str = "zh"
    topics: list[str] = Field(default_factory=list)
    """Topic groups (``config/taxonomy.toml`` categories) routed here; empty: every topic."""


def _default_lines() -> list[QueueLine]:
    return [QueueLine(name="hotline", language="zh"), QueueLine(name="hotline-en", language="en")]


class QueuesConfig(BaseModel):
    """Queues, pause reasons, after-call work and the wallboard's service-level target."""

    model_config = ConfigDict(extra="forbid")

    queue: list[QueueLine] = Field(default_factory=_default_lines, min_length=1)
    pause_reasons: list[str] = Field(
        default_factory=lambda: ["break", "meal", "training", "meeting", "coaching"],
        min_length=1)
    """What an agent may give as the reason for a pause (sent to Asterisk as ``Reason``)."""
    after_call_work_reason: str = "after-call work"
    """The ``QueuePause`` reason of automatic after-call work (not one an agent picks)."""
    after_call_work_seconds: int = Field(default=30, ge=0, le=3600)
    """Automatic after-call work after each queue call; 0 turns it off."""
    after_call_work_max_seconds: int = Field(default=600, ge=0, le=7200)
    """An agent may extend after-call work up to this long in all after a call."""
    skill_levels: int = Field(default=5, ge=1, le=10)
    """Skills are levels 1..N; level N (expert) is penalty 0, level 1 penalty N-1."""
    interface_template: str = "PJSIP/{extension}"
    """An agent's softphone: ``{extension}`` is digits only, so no other channel is added."""
    service_level_seconds: int = Field(default=20, ge=1, le=600)
    """Answered within this many seconds counts toward the service level."""
    spy_modes: dict[str, str] = Field(
        default_factory=lambda: {"listen": "q", "whisper": "qw", "barge": "qB"})
    """What a supervisor may do to an agent's call and the ``ChanSpy`` options for it
    (remove a mode to forbid it; ``q``: no beep or name announcement)."""
    spy_ring_timeout_ms: int = Field(default=30000, ge=1000, le=120000)
    pjsip_agents_path: str = "config/asterisk/pjsip_agents.conf"
    """Where the agents' softphone endpoints are written (``callcenter agents provision``):
    the file pjsip.conf includes, in Asterisk's config folder (``/etc/asterisk/...``)."""
    sip_realm: str = Field(default="asterisk", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """The digest realm of the agents' SIP credentials (PJSIP's default realm)."""

    @model_validator(mode="after")
    def _check(self) -> QueuesConfig:
        names = [line.name for line in self.queue]
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        if self.after_call_work_reason in self.pause_reasons:
            raise ValueError("after_call_work_reason must not be one of pause_reasons")
        if self.after_call_work_max_seconds < self.after_call_work_seconds:
            raise ValueError("after_call_work_max_seconds is below after_call_work_seconds")
        return self

    @property
    def queue_names(self) -> list[str]:
        return [line.name for line in self.queue]

    def penalty(self, level: int) -> int:
        """Asterisk rings lower penalties first: the most skilled agents first."""
        return self.skill_levels - level

    def interface(self, extension: str) -> str:
        return self.interface_template.format(extension=extension)
