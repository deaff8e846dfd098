"""Agents and queues: who is logged in to which queue with which skills, the agent's state
from Asterisk's own events (every period stored for reports), and the live wallboard."""

from callcenter.feature import Feature

FEATURE = Feature(name="queues", http=True, listeners=True, workers=True)
