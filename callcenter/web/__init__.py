"""The aiohttp app: JSON API, websockets, pages, health and metrics."""
