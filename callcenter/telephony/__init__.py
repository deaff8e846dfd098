"""Telephony: the only package that talks to Asterisk (AMI via panoramisk, FastAGI).

Everything else sees domain events (``events``) and the typed command port (``commands``).
"""

from callcenter.telephony.agi import AgiServer, AgiSession
from callcenter.telephony.commands import CommandPort, OriginateOutcome
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.errors import (
    AgiError,
    AgiTimeout,
    AmiActionError,
    AmiLoginError,
    AmiNotConnected,
    AmiTimeout,
    ChannelHungUp,
    TelephonyError,
)
from callcenter.telephony.service import Telephony

__all__ = [
    "AgiConfig", "AgiError", "AgiServer", "AgiTimeout", "AgiSession", "AmiActionError", "AmiConfig",
    "AmiLoginError", "AmiNotConnected", "AmiTimeout", "ChannelHungUp", "CommandPort",
    "OriginateOutcome", "Telephony", "TelephonyError",
]
