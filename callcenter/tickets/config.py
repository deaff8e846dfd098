"""Settings of the work-order domain and the taxonomy file they point to.

The taxonomy (deadlines by type, topics) is data a hotline office edits, so it lives in
``config/taxonomy.toml`` and is validated at start with errors naming the file and the key.
"""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callcenter.supervision.config import SupervisionConfig
from callcenter.tickets.models import TicketType

REPO = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """A config file is missing or invalid; the message names the file, the key and why."""


class AcceptanceDeadline(BaseModel):
    """How long a unit has to accept a dispatched order (及时接收).

    ``working_hours``: ``hours`` working hours inside the office day; ``same_day``: by the end
    of the working day on which the order was dispatched.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["working_hours", "same_day"] = "working_hours"
    hours: float = Field(default=2.0, gt=0, le=24)


class TicketsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxonomy_path: Path = REPO / "config" / "taxonomy.toml"
    calendar_dir: Path = REPO / "config" / "calendar"
    timezone: str = "Asia/Shanghai"
    office_day_start: time = time(9, 0)
    office_day_end: time = time(18, 0)
    acceptance: AcceptanceDeadline = AcceptanceDeadline()
    first_contact_hours: float = Field(default=1.0, gt=0)
    due_soon_working_days: int = Field(default=2, ge=0, le=30)
    duplicate_window_days: int = Field(default=30, ge=1, le=365)
    page_size_max: int = Field(default=100, ge=1, le=1000)
    # Ticket numbers reserved per round trip to the daily counter (see service.next_number).
    number_block: int = Field(default=20, ge=1, le=1000)
    supervision: SupervisionConfig = SupervisionConfig()

    @model_validator(mode="after")
    def _one_due_soon_horizon(self) -> TicketsConfig:
        """The "due soon" list filter and the reminders must name the same orders."""
        if "due_soon_working_days" not in self.supervision.model_fields_set:
            self.supervision = self.supervision.model_copy(
                update={"due_soon_working_days": self.due_soon_working_days})
        elif self.supervision.due_soon_working_days != self.due_soon_working_days:
            raise ValueError(
                f"supervision.due_soon_working_days ({self.supervision.due_soon_working_days})"
                f" differs from due_soon_working_days ({self.due_soon_working_days})")
        if self.office_day_end <= self.office_day_start:
            raise ValueError("office_day_end must be after office_day_start")
        return self


class Deadlines(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consultation: int = Field(gt=0, le=60)
    help: int = Field(gt=0, le=60)
    complaint: int = Field(gt=0, le=60)
    report: int = Field(gt=0, le=60)
    suggestion: int = Field(gt=0, le=60)
    praise: int = Field(gt=0, le=60)
    other: int = Field(gt=0, le=60)
    company: int = Field(gt=0, le=60)
    max_extension_days: int = Field(ge=0, le=60)


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadlines: Deadlines
    topics: dict[str, str] = Field(min_length=1)

    def working_days_for(self, ticket_type: TicketType | str, *, company: bool) -> int:
        """The reply deadline in working days: company requests have their own."""
        if company:
            return self.deadlines.company
        return int(getattr(self.deadlines, TicketType(ticket_type).value))


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate the taxonomy; raise ``ConfigError`` naming file, key and reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Taxonomy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise ConfigError(f"{path}: {key}: {first['msg']}") from exc
