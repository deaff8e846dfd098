"""Errors the telephony layer raises to its callers (the command port, FastAGI sessions)."""

from __future__ import annotations


class TelephonyError(Exception):
    """Base class of every telephony error."""


class AmiNotConnected(TelephonyError):
    """No logged-in AMI connection, or it was lost before the reply arrived."""


class AsteriskShutdown(AmiNotConnected):
    """Asterisk announced it is shutting down or restarting (``Event: Shutdown``): requests
    still waiting on that connection will never be answered."""


class AmiTimeout(TelephonyError):
    """Asterisk did not answer an action within its timeout."""


class AmiActionError(TelephonyError):
    """Asterisk answered ``Response: Error``; ``message`` is Asterisk's own text."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class AmiLoginError(TelephonyError):
    """Asterisk refused the login (wrong user or secret, or not permitted)."""


class AgiError(TelephonyError):
    """A FastAGI command failed (usage error, invalid command)."""


class ChannelHungUp(AgiError):
    """The caller hung up: the channel is dead, the script should end."""


class AgiTimeout(AgiError):
    """Asterisk did not answer a FastAGI command in time; the socket has been closed."""
