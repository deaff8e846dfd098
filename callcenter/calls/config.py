"""Settings of the call log (section ``[calls]`` of the settings file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class CallsConfig(BaseModel):
    """How the call tracker classifies calls, and where Asterisk's CDR file is."""

    model_config = ConfigDict(extra="forbid")

    cdr_csv: Path | None = Field(None, description="Asterisk's cdr_csv Master.csv, read after "
                                 "an outage to back-fill calls the service did not see")
    """Usually ``/var/log/asterisk/cdr-csv/Master.csv``; None turns the back-fill off."""
    cdr_timezone: str = "UTC"
    """The zone of the Asterisk server's clock: cdr_csv writes local times without a zone."""
    inbound_contexts: tuple[str, ...] = ("from-pstn*", "*-pstn-*", "from-trunk*")
    """Dialplan contexts (shell patterns) where calls from the public network arrive: an
    Originated channel running in one of them is a (simulated) citizen calling in, any other
    Originate is an outbound call."""
    trunks: tuple[str, ...] = ("PJSIP/trunk", "SIP/trunk", "IAX2/trunk", "trunk/")
    """Prefixes of a dialled channel or dial string that leave through the PSTN trunk: a
    channel dialling one of them makes an outbound call."""
    extension_max_digits: int = Field(4, ge=1, le=16)
    """Numbers this short on both ends are internal extensions (an agent calling an agent)."""
