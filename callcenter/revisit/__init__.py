"""Satisfaction-revisit campaigns (回访): scheduling, the outbound dialer, the keypad survey
over FastAGI and the results on the ticket."""

from callcenter.feature import Feature

FEATURE = Feature(name="revisit", http=True, agi=True, workers=True)
