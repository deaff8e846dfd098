"""The inbound IVR: FastAGI scripts the dialplan runs before the queue."""

from callcenter.feature import Feature

FEATURE = Feature(name="ivr", agi=True)
