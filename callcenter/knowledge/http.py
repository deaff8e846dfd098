"""The knowledge base over HTTP: agents search it during a call; supervisors and admins
keep it (create, edit, retire)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.knowledge.models import KnowledgeArticle
from callcenter.knowledge.service import save_article, search
from callcenter.web.errors import not_found
from callcenter.web.keys import CLOCK, SESSIONMAKER
from callcenter.web.request import API_PREFIX, path_int, read_json, require_role

EDITORS = (Role.SUPERVISOR, Role.ADMIN)


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20000)
    topic: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=30)
    active: bool = True


class ArticlePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=20000)
    topic: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(default=None, max_length=30)
    active: bool | None = None


def article_json(article: KnowledgeArticle, score: float | None = None) -> dict[str, Any]:
    out = {"id": article.id, "title": article.title, "body": article.body,
           "topic": article.topic, "tags": list(article.tags or []), "active": article.active,
           "updated_at": article.updated_at.isoformat()}
    if score is not None:
        out["score"] = score
    return out


async def get_knowledge(request: web.Request) -> web.Response:
    """``?q=`` searches active articles (agents, during a call); without it, lists them."""
    principal = require_role(request, Role.AGENT, Role.SUPERVISOR, Role.ADMIN,
                             Role.UNIT_HANDLER)
    q, topic = request.query.get("q", "").strip(), request.query.get("topic") or None
    async with request.app[SESSIONMAKER]() as session:
        if q:
            found = await search(session, q[:200], topic=topic)
            return web.json_response({"articles": [article_json(a, s) for a, s in found]})
        stmt = select(KnowledgeArticle).order_by(KnowledgeArticle.updated_at.desc()).limit(200)
        if principal.role not in EDITORS:  # retired answers are for their editors only
            stmt = stmt.where(KnowledgeArticle.active.is_(True))
        if topic:
            stmt = stmt.where(KnowledgeArticle.topic == topic)
        articles = (await session.scalars(stmt)).all()
    return web.json_response({"articles": [article_json(a) for a in articles]})


async def get_article(request: web.Request) -> web.Response:
    require_role(request)
    async with request.app[SESSIONMAKER]() as session:
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
    if article is None:
        raise not_found("article not found")
    return web.json_response(article_json(article))


async def post_article(request: web.Request) -> web.Response:
    principal = require_role(request, *EDITORS)
    body = await read_json(request, ArticleIn)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await save_article(session, request.app[CLOCK], principal,
                                     **body.model_dump())
        result = article_json(article)
    return web.json_response(result, status=201)


async def patch_article(request: web.Request) -> web.Response:
    principal = require_role(request, *EDITORS)
    changes = (await read_json(request, ArticlePatch)).model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
        if article is None:
            raise not_found("article not found")
        article = await save_article(session, request.app[CLOCK], principal, article=article,
                                     **changes)
        result = article_json(article)
    return web.json_response(result)


async def delete_article(request: web.Request) -> web.Response:
    """Articles are retired (inactive), not erased: closed orders still point at them."""
    principal = require_role(request, *EDITORS)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
        if article is None:
            raise not_found("article not found")
        await save_article(session, request.app[CLOCK], principal, article=article,
                           active=False)
    return web.json_response({"id": article.id, "active": False})


def setup_web(app: web.Application) -> None:
    app.router.add_get(f"{API_PREFIX}/knowledge", get_knowledge)
    app.router.add_post(f"{API_PREFIX}/knowledge", post_article)
    app.router.add_get(f"{API_PREFIX}/knowledge/{{article_id}}", get_article)
    app.router.add_patch(f"{API_PREFIX}/knowledge/{{article_id}}", patch_article)
    app.router.add_delete(f"{API_PREFIX}/knowledge/{{article_id}}", delete_article)
