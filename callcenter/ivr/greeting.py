"""The default inbound script: greet the caller, then let the dialplan queue the call.

GB/T 33358-2016 says the phone intake should not put callers through voice menus, so the
hotline's default IVR only greets and connects straight to an agent: after this script
returns, Asterisk continues the dialplan with ``Queue(hotline)``.
"""

from __future__ import annotations

import logging

from callcenter.telephony.agi import AgiSession
from callcenter.telephony.errors import AgiError, ChannelHungUp

log = logging.getLogger(__name__)

GREETING_PROMPT = "hotline-welcome"
"""Prompt file name as Asterisk knows it (sounds dir, no extension)."""


async def greet_and_connect(session: AgiSession) -> None:
    """Answer, play the welcome prompt, record the IVR path on the channel."""
    try:
        await session.answer()
        try:
            await session.stream_file(GREETING_PROMPT)
        except ChannelHungUp:
            raise
        except AgiError as exc:  # a missing prompt must not keep the caller from an agent
            log.warning("ivr.greeting_failed channel=%s error=%s", session.channel, exc)
        await session.set_variable("IVR_PATH", "greeting")
    except ChannelHungUp:
        log.info("ivr.caller_hung_up channel=%s", session.channel)
