"""The pages people use in a browser (``/ui/...``): static HTML, CSS and JavaScript that
hold no data. Every figure, ticket and recording a page shows comes from the API, with the
bearer token the page got at login, so the API's roles and audit apply to pages as they do
to any client.

A page is a file in ``web/pages/``; ``/ui/<name>`` serves ``<name>.html``. The headers allow
scripts from the service alone (no inline script, no framing; inline styles are allowed for
the monthly report, a self-contained document shown in a sandboxed frame), and no page is
cached, so a deployment's new version is what the next load runs.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

PAGES_PREFIX = "/ui"
PAGES_DIR = Path(__file__).parent / "pages"
NAME = re.compile(r"[a-z][a-z0-9-]{0,40}(\.(html|js|css))?")
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data: blob:; media-src 'self'; frame-src 'self'; object-src 'none';"
        " base-uri 'none';"
        " frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_file(name: str) -> Path | None:
    """The file behind ``/ui/<name>`` (``index`` for ``/ui/``), or None: only plain names
    of files in ``pages/`` are served, never a path."""
    name = name or "index"
    if not NAME.fullmatch(name):
        return None
    path = PAGES_DIR / (name if "." in name else f"{name}.html")
    return path if path.is_file() else None


async def get_page(request: web.Request) -> web.StreamResponse:
    path = page_file(request.match_info.get("name", ""))
    if path is None:
        raise web.HTTPNotFound(text="no such page")
    return web.Response(body=path.read_bytes(), content_type=TYPES[path.suffix],
                        charset="utf-8", headers=SECURITY_HEADERS)


async def get_root(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PAGES_PREFIX}/")


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/", get_root)
    app.router.add_get(f"{PAGES_PREFIX}/", get_page)
    app.router.add_get(f"{PAGES_PREFIX}/{{name}}", get_page)
