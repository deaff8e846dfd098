"""The IVR's FastAGI scripts, by the name the dialplan uses: ``AGI(agi://host/ivr)``."""

from __future__ import annotations

from callcenter.feature import AgiScript
from callcenter.ivr.greeting import greet_and_connect

SCRIPTS: dict[str, AgiScript] = {"ivr": greet_and_connect}
