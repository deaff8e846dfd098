"""Settings of the recordings feature (section ``[recordings]`` of the settings file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from callcenter.auth.principal import Role


class ClickToCallConfig(BaseModel):
    """How a unit handler's click reaches the citizen (the ``[callback]`` context)."""

    model_config = ConfigDict(extra="forbid")

    context: str = "callback"
    handler_channel: str = "PJSIP/{extension}"
    """The handler's phone is called first; ``{extension}`` is the extension they give
    (digits only), so a click can never dial an arbitrary channel or the trunk."""
    caller_id: str = '"12345" <12345>'
    """The hotline's number, shown on both phones: the citizen's number is never shown."""
    ring_timeout_ms: int = Field(default=30000, ge=1000, le=120000)


class RecordingsConfig(BaseModel):
    """Where recordings come from and go, who may listen, and how long they are kept."""

    model_config = ConfigDict(extra="forbid")

    store_dir: Path = Path("var/recordings")
    """The local store: files are filed as ``recordings/YYYY/MM/DD/<id>.wav`` under it."""
    monitor_dir: Path = Path("/var/spool/asterisk/monitor")
    """Asterisk's monitor folder as this host sees it (a shared volume)."""
    asterisk_monitor_dir: str = "/var/spool/asterisk/monitor"
    """The same folder as Asterisk names it in ``MIXMONITOR_FILENAME``."""
    retry_delays: list[float] = Field(default_factory=lambda: [0.5, 2.0, 10.0, 60.0, 300.0],
                                      min_length=1)
    """Seconds between attempts to take over a file that is missing, empty or unstorable:
    the first attempt is at the hang-up, the workers' loop makes one more after each delay
    (``len + 1`` attempts in all); after the last the recording is ``lost`` (flagged and
    alerted, never dropped). The first delay is short: the file may land just after the
    hang-up."""
    listen_roles: list[Role] = Field(
        default_factory=lambda: [Role.SUPERVISOR, Role.ADMIN, Role.UNIT_HANDLER])
    """Roles that may play or download; a unit handler only for its unit's orders."""
    sweep_interval: float = Field(default=86400.0, gt=0)
    """Seconds between integrity sweeps (re-hash every stored file)."""
    retention_days: int | None = Field(default=None, ge=1)
    """Delete recordings older than this (None: keep for ever); never those of open or
    disputed orders."""
    click_to_call: ClickToCallConfig = ClickToCallConfig()
