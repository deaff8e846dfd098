"""Telephony-integrated call-center backend for government service hotlines."""

__version__ = "0.1.0"
