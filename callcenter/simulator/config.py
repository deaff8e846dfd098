"""Settings of the Asterisk simulator (the ``[simulator]`` section of callcenter.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

REPO_ROOT = Path(__file__).resolve().parents[2]


class AmiUserConfig(BaseModel):
    """An AMI account; when `users` is empty the accounts of manager.conf are used."""

    model_config = ConfigDict(extra="forbid")

    username: str
    secret: SecretStr
    read: str = "all"
    write: str = "all"
    writetimeout: int = Field(100, ge=100, description="ms a blocked write may last (manager.conf)")


class AgentConfig(BaseModel):
    """A softphone the simulator plays; with `login` it is added to `queues` at start."""

    model_config = ConfigDict(extra="forbid")

    interface: str = Field(description="e.g. PJSIP/1001")
    name: str | None = None
    queues: list[str] = Field(default_factory=lambda: ["hotline"])
    login: bool = False
    penalty: int = 0
    answer_after: float = 2.0
    mode: Literal["answer", "never", "busy", "congestion"] = "answer"
    talk_time: float | None = None
    hangup_after_answer: float | None = Field(
        None, description="hang up this long after answering (AgentDump during an announce)"
    )
    voice: str | None = None


class SimulatorConfig(BaseModel):
    """Everything the simulated Asterisk needs; defaults make the embedded demo work."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=0, le=65535, description="AMI port; 0 picks a free one")
    asterisk_config_dir: Path = REPO_ROOT / "config" / "asterisk"
    agi_host: str | None = Field(None, description="replace the host of agi:// URLs")
    agi_port: int | None = Field(None, description="replace the port of agi:// URLs")
    users: list[AmiUserConfig] = Field(default_factory=list)
    timestampevents: bool | None = Field(None, description="None: as manager.conf says")
    seed: int | None = None
    time_scale: float = Field(1.0, gt=0, description="wall seconds per simulated second")
    start_time: float | None = Field(None, description="simulated epoch at start; None = now")
    recordings_dir: Path = REPO_ROOT / "recordings"
    monitor_dir: str = "/var/spool/asterisk/monitor"
    speech_samples_dir: Path = REPO_ROOT.parent / "shared" / "speech-samples"
    agents: list[AgentConfig] = Field(default_factory=list)
    bad_login_delay: float = Field(1.0, ge=0, description="wall seconds, like Asterisk's sleep(1)")
    trunk: str = "trunk"
    sip_domain: str = "127.0.0.1"
    system_name: str | None = None
    sounds_dir: Path = Field(
        REPO_ROOT / "var" / "sounds",
        description="Asterisk's sounds folder (<lang>/<name>.wav); missing stock prompts are "
        "generated here at start",
    )
    cdr_dir: Path = Field(
        REPO_ROOT / "var" / "cdr-csv",
        description="Asterisk's log/cdr-csv folder: cdr_csv writes Master.csv here",
    )

    @field_validator(
        "asterisk_config_dir", "recordings_dir", "speech_samples_dir", "sounds_dir", "cdr_dir"
    )
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (Path.cwd() / value)
