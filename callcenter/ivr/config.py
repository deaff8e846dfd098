"""Settings of the IVR (section ``[ivr]`` of the settings file)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO = Path(__file__).resolve().parents[2]


class TtsConfig(BaseModel):
    """The voice prompts are synthesized with when no recording exists."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field("pyttsx3", description="'pyttsx3', or 'module:Class' of a site's "
                        "own engine (see callcenter/ivr/tts.py, TtsEngine)")
    rate: int = Field(150, ge=60, le=400, description="words per minute")
    voices: dict[str, str] = Field(
        default_factory=lambda: {"zh": "cmn-latn-pinyin", "en": "en"},
        description="language -> espeak-ng voice; Mandarin speaks tone-numbered pinyin")


class IvrConfig(BaseModel):
    """Which flow runs, where its prompts come from and where Asterisk reads them."""

    model_config = ConfigDict(extra="forbid")

    flows_dir: Path = REPO / "ivr"
    """One TOML file per flow, ``prompts.toml`` (prompt texts) and ``prompts/<lang>/``
    (professionally recorded prompts, which win over synthesis)."""
    flow: str = "hotline"
    """The flow ``AGI(agi://host/ivr)`` runs (``<flows_dir>/<flow>.toml``)."""
    sounds_dir: Path = REPO / "var" / "sounds"
    """Where Asterisk reads sounds (``/var/lib/asterisk/sounds`` on a real server; the
    simulator's ``sounds_dir`` for the demo): prompts are installed as
    ``<sounds_dir>/<lang>/<name>.wav``."""
    cache_dir: Path = REPO / "var" / "prompt-cache"
    """Synthesized prompts by hash of text, voice and rate: a rebuild reuses them."""
    build_missing_prompts: bool = True
    """At start, synthesize and install prompts missing from ``sounds_dir``; False makes a
    missing prompt stop the start instead."""
    tts: TtsConfig = Field(default_factory=TtsConfig)
    open_from: time | None = None
    open_until: time | None = None
    """The hotline's staffed hours (local time); both None: around the clock."""
    working_days_only: bool = False
    """Closed on weekends and public holidays of the working-day calendar."""
    holidays_from_calendar: bool = True
    """The ``holiday`` branch is taken on the calendar's public holidays (weekdays off), as
    well as whenever a supervisor switches the holiday announcement on."""
    message_dir: str = "/var/spool/asterisk/monitor"
    """Where Asterisk writes after-hours messages (``RECORD FILE``), as Asterisk sees it."""
    message_max_seconds: int = Field(120, ge=5, le=600)
    verification_limit: int = Field(5, ge=1, le=100)
    """Failed ticket checks per calling number and day before lookups are refused."""
    announcement_cache_seconds: float = Field(1.0, ge=0, le=60)
    """How long a process trusts its copy of the holiday/emergency switches."""

    @field_validator("flows_dir", "sounds_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else Path.cwd() / value

    @model_validator(mode="after")
    def _hours_together(self) -> IvrConfig:
        if (self.open_from is None) != (self.open_until is None):
            raise ValueError("open_from and open_until go together (or both unset)")
        return self
