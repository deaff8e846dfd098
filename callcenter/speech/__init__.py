"""Speech-to-text: every recorded call and after-hours message is transcribed by Vosk in
worker processes, and the citizen's words become a ticket draft the agent only checks."""

from callcenter.feature import Feature

FEATURE = Feature(name="speech", http=True, workers=True)
