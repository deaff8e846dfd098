"""Supervision (督办): the daily deadline scan, reminders, hotspots and live notifications."""

from callcenter.feature import Feature

FEATURE = Feature(name="supervision", http=True, workers=True)
