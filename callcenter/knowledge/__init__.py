"""The knowledge base (知识库): standard answers agents read to callers (direct answers)."""

from callcenter.feature import Feature

FEATURE = Feature(name="knowledge", http=True)
