"""Recordings as proof of contact: every call's MixMonitor file is taken over, hashed and
filed; click-to-call lets a unit reach the citizen without seeing the number."""

from callcenter.feature import Feature

FEATURE = Feature(name="recordings", http=True, listeners=True, workers=True)
