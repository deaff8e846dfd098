"""Calls: the call log, one row per call (an Asterisk ``Linkedid``), kept by the call
tracker from domain events."""

from callcenter.feature import Feature

FEATURE = Feature(name="calls", listeners=True)
