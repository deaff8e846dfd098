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


class FirstContactDeadline(BaseModel):
    """How soon a unit must contact the citizen (首次联系), in office time.

    Counted from the unit's acceptance (or from dispatch) in working time, so a deadline
    never falls on a holiday: ``working_hours`` of the office day, or the end of the
    ``working_days``-th working day (0: the same working day).
    """

    model_config = ConfigDict(extra="forbid")

    start: Literal["acceptance", "dispatch"] = "acceptance"
    mode: Literal["working_hours", "working_days"] = "working_hours"
    hours: float = Field(default=1.0, gt=0, le=72)  # seed 003: within 1 hour
    days: int = Field(default=1, ge=0, le=10)


class ClosingRule(BaseModel):
    """No fake closures: a unit's final reply on an order of these types needs a contact
    record (a click-to-call the citizen answered) of at least ``min_talk_seconds``, or a
    supervisor's written override. Anonymous orders and callers who asked not to be
    contacted are exempt (and marked so on the reply)."""

    model_config = ConfigDict(extra="forbid")

    contact_required_types: list[TicketType] = Field(default_factory=lambda: [
        TicketType.HELP, TicketType.COMPLAINT, TicketType.REPORT])
    min_talk_seconds: float = Field(default=10.0, ge=0, le=3600)


class TicketsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxonomy_path: Path = REPO / "config" / "taxonomy.toml"
    calendar_dir: Path = REPO / "config" / "calendar"
    timezone: str = "Asia/Shanghai"
    office_day_start: time = time(9, 0)
    office_day_end: time = time(18, 0)
    acceptance: AcceptanceDeadline = AcceptanceDeadline()
    first_contact: FirstContactDeadline = FirstContactDeadline()
    # A promised order's completion date may lie at most this many days after its plan.
    # The seeds fix no number; one quarter is the longest cycle their reports follow.
    promise_horizon_days: int = Field(default=90, ge=1, le=730)
    # A revisit counts as "unreachable" only after this many failed attempts.
    revisit_attempts: int = Field(default=3, ge=1, le=10)
    due_soon_working_days: int = Field(default=2, ge=0, le=30)
    duplicate_window_days: int = Field(default=30, ge=1, le=365)
    page_size_max: int = Field(default=100, ge=1, le=1000)
    # Ticket numbers reserved per round trip to the daily counter (see service.next_number).
    number_block: int = Field(default=20, ge=1, le=1000)
    supervision: SupervisionConfig = SupervisionConfig()
    closing: ClosingRule = ClosingRule()

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


class TypeDeadlines(BaseModel):
    """Working days per ticket type (citizens' requests, or companies': seed 003)."""

    model_config = ConfigDict(extra="forbid")

    consultation: int = Field(gt=0, le=60)
    help: int = Field(gt=0, le=60)
    complaint: int = Field(gt=0, le=60)
    report: int = Field(gt=0, le=60)
    suggestion: int = Field(gt=0, le=60)
    praise: int = Field(gt=0, le=60)
    other: int = Field(gt=0, le=60)


class Deadlines(TypeDeadlines):
    """Working days per ticket type (and the extension cap)."""

    max_extension_days: int = Field(default=10, ge=0, le=60)



class Topic(BaseModel):
    """A level-1 topic: its label, its default units (unit codes) and its level-2 topics."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1)
    units: list[str] = Field(min_length=1)
    children: dict[str, str] = {}


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadlines: Deadlines
    company_deadlines: TypeDeadlines
    # Urgency level -> hours on the clock (an urgent matter does not wait for a holiday).
    urgency: dict[str, float] = {}
    topics: dict[str, Topic] = Field(min_length=1)
    # Retired topic codes -> their code now; stored orders keep working.
    aliases: dict[str, str] = {}

    @model_validator(mode="after")
    def _codes_are_unique(self) -> Taxonomy:
        seen: dict[str, str] = {}
        for code, topic in self.topics.items():
            for name in (code, *topic.children):
                if name in seen:
                    raise ValueError(f"topic code {name!r} is used twice "
                                     f"({seen[name]} and {code})")
                seen[name] = code
        for old, new in self.aliases.items():
            if old in seen:
                raise ValueError(f"alias {old!r} is also a topic code")
            if new not in seen:
                raise ValueError(f"alias {old!r} points to unknown topic {new!r}")
        if "normal" in self.urgency:
            raise ValueError("urgency 'normal' is the working-day deadline; not an hours level")
        for level, hours in self.urgency.items():
            if not 0 < hours <= 240:
                raise ValueError(f"urgency {level!r}: hours must be in (0, 240]")
        return self

    def working_days_for(self, ticket_type: TicketType | str, *, company: bool) -> int:
        """The reply deadline in working days: company requests have their own per type."""
        table = self.company_deadlines if company else self.deadlines
        return int(getattr(table, TicketType(ticket_type).value))

    def topic_code(self, code: str) -> str | None:
        """The current code of ``code`` (a level-1, level-2 or retired code); None if unknown."""
        code = self.aliases.get(code, code)
        if code in self.topics:
            return code
        if any(code in t.children for t in self.topics.values()):
            return code
        return None

    def topic_family(self, code: str) -> list[str]:
        """``code`` and, for a level-1 topic, its level-2 topics (a list filter's codes)."""
        code = self.aliases.get(code, code)
        topic = self.topics.get(code)
        family = [code, *topic.children] if topic else [code]
        return family + [old for old, new in self.aliases.items() if new in family]

    def default_units(self, code: str) -> list[str]:
        """The unit codes a topic is usually dispatched to (its level-1 topic's units)."""
        code = self.aliases.get(code, code)
        for parent, topic in self.topics.items():
            if code == parent or code in topic.children:
                return list(topic.units)
        return []


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
