"""Transcripts (one row per recording, the claim on it and its outcome) and the draft
suggestions made from them, with what the agent did to each: accuracy comes from real use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base

STATUSES = ("queued", "running", "done", "failed")
"""``queued``: waiting for a worker (also after a failed attempt that will be retried).
``running``: claimed by a worker until ``lease_until`` (a dead worker's claim expires).
``done``: the transcript is stored. ``failed``: ``error`` says why, after the last
attempt or because no model can decode it; a request to transcribe again re-queues it."""
OPEN = ("queued", "running")
STATES = ("suggested", "confirmed", "corrected")
"""A suggestion is ``suggested`` until the agent confirms it or writes the right value."""


class SpeechTranscript(Base):
    """One recording's transcription: the job's claim, attempts, outcome and the JSON."""

    __tablename__ = "speech_transcripts"
    __table_args__ = (Index("ix_speech_transcripts_status_lease", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audio_ref: Mapped[str] = mapped_column(String(300), unique=True)
    """Where the audio is: a store key (``recordings/...``) or a monitor-folder file name
    (an after-hours message). One row per audio: never transcribed twice at once."""
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(150), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    """``call`` (a recorded call) or ``after_hours_message`` (the IVR's draft to fill)."""
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """``Transcript.to_json()`` once done."""
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    decode_seconds: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DraftSuggestion(Base):
    """A field the machine filled from a transcript, and the agent's verdict on it."""

    __tablename__ = "speech_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transcript_id: Mapped[int] = mapped_column(ForeignKey("speech_transcripts.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    span_start: Mapped[float] = mapped_column(Float)
    span_end: Mapped[float] = mapped_column(Float)
    evidence: Mapped[str] = mapped_column(Text)
    needs_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))
    corrected_value: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
