"""Settings of the revisit campaigns (section ``[revisit]``): the default campaign's rules
and where the dialer and the survey find their trunk, prompts and recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPO = Path(__file__).resolve().parents[2]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
StarResult = Literal["satisfied", "basically_satisfied", "unsatisfied"]
DEFAULT_STAR_RESULTS: dict[int, StarResult] = {
    5: "satisfied", 4: "satisfied", 3: "basically_satisfied", 2: "unsatisfied",
    1: "unsatisfied"}


class CampaignSettings(BaseModel):
    """What one campaign may do: when it calls, how hard, and how often it tries again.

    ``windows`` maps a weekday to local ``[from_hour, to_hour)``; a day not named is not
    called. ``working_days_only`` also skips the calendar's days off (public holidays)."""

    model_config = ConfigDict(extra="forbid")

    windows: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {d: (9, 20) for d in WEEKDAYS})
    working_days_only: bool = True
    max_lines: int = Field(10, ge=1, le=1000)
    calls_per_second: float = Field(2.0, gt=0, le=100)
    max_attempts: int = Field(3, ge=1, le=20)
    retry_busy_seconds: int = Field(600, ge=0, description="busy: the citizen is near a phone")
    retry_no_answer_seconds: int = Field(7200, ge=0, description="no answer: try much later")
    retry_failed_seconds: int = Field(1800, ge=0, description="congestion, failure, a lost call")
    caller_id: str = '"12345" <12345>'
    language: str = "zh"
    ring_timeout_ms: int = Field(30000, ge=5000, le=120000)
    delay_after_reply_hours: float = Field(24.0, ge=0, description="the office's time to "
                                           "reject the reply before the citizen is called")
    scale: Literal["three", "stars"] = "three"
    """``three``: 1 satisfied, 2 basically satisfied, 3 unsatisfied; ``stars``: 1-5 stars,
    turned into a result by ``star_results``."""
    star_results: dict[int, StarResult] = Field(
        default_factory=lambda: dict(DEFAULT_STAR_RESULTS))

    @model_validator(mode="after")
    def _check_windows(self) -> CampaignSettings:
        for day, (start, end) in self.windows.items():
            if day not in WEEKDAYS:
                raise ValueError(f"windows: unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            if not 0 <= start < end <= 24:
                raise ValueError(f"windows.{day}: hours must satisfy 0 <= from < to <= 24")
        return self

    @model_validator(mode="after")
    def _check_stars(self) -> CampaignSettings:
        if sorted(self.star_results) != [1, 2, 3, 4, 5]:
            raise ValueError("star_results must give a result for each of 1, 2, 3, 4, 5 stars")
        return self


class MessageConfig(BaseModel):
    """The text-message survey sent after the last unanswered call (section
    ``[revisit.messages]``): which sender, where it sends, and how hard it tries."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    sender: Literal["outbox", "webhook"] = "outbox"
    """``outbox``: one JSON file per message in ``outbox_dir`` for a gateway to pick up;
    ``webhook``: an HTTP POST of the same JSON to ``webhook_url``."""
    outbox_dir: Path = REPO / "var" / "revisit-outbox"
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    hotline: str = "12345政务服务便民热线"
    """How the text names the sender (no personal data is ever in a text)."""
    mobile_pattern: str = r"^(\+?86)?1[3-9]\d{9}$"
    """Only numbers that can receive a text get one."""
    max_tries: int = Field(5, ge=1, le=50)
    retry_seconds: float = Field(60.0, ge=0, description="the wait after the first failed "
                                 "try; doubled after each further one")
    retry_max_seconds: float = Field(3600.0, ge=0)
    poll_seconds: float = Field(2.0, gt=0, le=60)
    lease_seconds: float = Field(120.0, gt=0, description="a sender that holds a message "
                                 "this long is gone; another sends it")

    @model_validator(mode="after")
    def _check_sender(self) -> MessageConfig:
        if self.enabled and self.sender == "webhook" and not self.webhook_url:
            raise ValueError("sender = \"webhook\" needs webhook_url")
        return self


class RevisitConfig(BaseModel):
    """The dialer, the survey and the default campaign."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Run the dialer where the telephony door is (the scheduler runs anyway)."""
    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    """The ``default`` campaign's settings when it is first created (later: the API)."""
    trunk_channel: str = "PJSIP/trunk/{number}"
    context: str = "revisit"
    poll_seconds: float = Field(2.0, gt=0, le=60)
    housekeeping_seconds: float = Field(2.0, ge=0, le=60, description="new revisits, lease "
                                        "renewal and reconciliation at most this often")
    lease_seconds: float = Field(120.0, gt=0, description="a dialer that stops renewing its "
                                 "claims for this long is gone; its calls are reconciled")
    max_call_seconds: float = Field(900.0, gt=0, description="an answered call whose hang-up "
                                    "was not heard is checked against Asterisk after this")
    prompts_dir: Path = REPO / "config" / "revisit"
    comment_dir: str = "/var/spool/asterisk/monitor"
    """Where Asterisk writes the spoken comment (``RECORD FILE``), as Asterisk sees it."""
    comment_max_seconds: int = Field(60, ge=3, le=600)
    key_timeout_ms: int = Field(6000, ge=1000, le=30000)
    key_retries: int = Field(2, ge=0, le=5, description="re-asks after silence or a wrong key")
    messages: MessageConfig = Field(default_factory=MessageConfig)
