"""The inbound IVR: flows as data in ``ivr/``, served over FastAGI before the queue."""

from callcenter.feature import Feature

FEATURE = Feature(name="ivr", http=True, agi=True)
