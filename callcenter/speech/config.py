"""Settings of the speech feature (section ``[speech]`` of the settings file)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callcenter.auth.principal import Role

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_MODEL = REPO_ROOT.parent / "shared" / "models" / "vosk-model-small-cn-0.22"
"""The small Mandarin model in the project's shared folder (``../shared/models``)."""


class SpeechConfig(BaseModel):
    """Which models decode which language, how many processes decode, how jobs retry."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, Path] = Field(default_factory=lambda: {"zh": SHARED_MODEL})
    """Vosk model directories by language (``zh``, ``en``); a missing one is reported on
    ``/healthz`` and fails its jobs with a clear status, never the service."""
    language: str = "zh"
    """The language of calls when a job does not say."""
    pool_size: int | None = Field(default=None, ge=1)
    """Decoding processes of one worker (None: one per core)."""
    max_attempts: int = Field(default=3, ge=1)
    """Attempts of one recording before it is ``failed`` (a poison job stops here)."""
    chunk_frames: int = Field(default=4000, ge=160)
    """Frames read and fed to the recognizer at a time: long files are never read whole."""
    digit_pass: bool = True
    """Decode each spoken number again with a digits-only grammar (phone numbers come out
    digit by digit; costs a second decode of those spans only)."""
    lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claimed transcription is held without a heartbeat (a dead worker's job
    is taken by another after this)."""
    sweep_interval: float = Field(default=60.0, gt=0)
    """Seconds between sweeps that queue stored recordings without a transcript and jobs
    whose queueing or worker was lost."""
    transcribe_calls: bool = True
    """Transcribe every stored call recording (False: only after-hours messages and
    on-demand requests)."""
    draft_rules_path: Path = REPO_ROOT / "config" / "speech_draft.toml"
    """The draft extractor's rules and keywords."""
    view_roles: list[Role] = Field(
        default_factory=lambda: [Role.AGENT, Role.SUPERVISOR, Role.ADMIN])
    """Roles that may read transcripts and drafts, confirm and correct suggestions."""

    @field_validator("models")
    @classmethod
    def _some_model(cls, value: dict[str, Path]) -> dict[str, Path]:
        if not value:
            raise ValueError("name at least one model directory by language")
        return value

    @property
    def processes(self) -> int:
        return self.pool_size or os.cpu_count() or 1
