"""The knowledge base over HTTP: agents search it during a call; supervisors and admins
keep it (create, edit, retire). Retired articles are seen only by those who keep it."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.principal import Principal, Role
from callcenter.knowledge.models import KnowledgeArticle
from callcenter.knowledge.service import save_article, search
from callcenter.web.errors import not_found
from callcenter.web.keys import CLOCK, SESSIONMAKER
from callcenter.web.request import API_PREFIX, path_int
from callcenter.web.routing import Api

API = Api()
EDITORS = (Role.SUPERVISOR, Role.ADMIN)
ALL = tuple(Role)
ONE = f"{API_PREFIX}/knowledge/{{article_id}}"


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


class KnowledgeQuery(BaseModel):
    """``q`` searches the active articles; without it, the newest are listed."""

    model_config = ConfigDict(extra="forbid")
    q: str = Field(default="", max_length=200)
    topic: str | None = Field(default=None, max_length=64)


class ArticleOut(BaseModel):
    id: int
    title: str
    body: str
    topic: str | None
    tags: list[str]
    active: bool
    updated_at: datetime
    score: float | None = None

    @classmethod
    def of(cls, article: KnowledgeArticle, score: float | None = None) -> ArticleOut:
        return cls(id=article.id, title=article.title, body=article.body, topic=article.topic,
                   tags=list(article.tags or []), active=article.active,
                   updated_at=article.updated_at, score=score)


class ArticleList(BaseModel):
    articles: list[ArticleOut]


class Retired(BaseModel):
    id: int
    active: bool


@API.route("GET", f"{API_PREFIX}/knowledge", summary="Search or list the knowledge base",
           roles=ALL, query=KnowledgeQuery, response=ArticleList)
async def get_knowledge(request: web.Request, principal: Principal, query: KnowledgeQuery
                        ) -> ArticleList:
    """``?q=`` searches active articles (agents, during a call); without it, lists them."""
    q, topic = query.q.strip(), query.topic or None
    async with request.app[SESSIONMAKER]() as session:
        if q:
            found = await search(session, q, topic=topic)
            return ArticleList(articles=[ArticleOut.of(a, s) for a, s in found])
        stmt = select(KnowledgeArticle).order_by(KnowledgeArticle.updated_at.desc()).limit(200)
        if principal.role not in EDITORS:  # retired answers are for their editors only
            stmt = stmt.where(KnowledgeArticle.active.is_(True))
        if topic:
            stmt = stmt.where(KnowledgeArticle.topic == topic)
        articles = (await session.scalars(stmt)).all()
    return ArticleList(articles=[ArticleOut.of(a) for a in articles])


@API.route("GET", ONE, summary="One article (a retired one only for its editors)", roles=ALL,
           response=ArticleOut)
async def get_article(request: web.Request, principal: Principal, _: None) -> ArticleOut:
    async with request.app[SESSIONMAKER]() as session:
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
    if article is None or (not article.active and principal.role not in EDITORS):
        raise not_found("article not found")
    return ArticleOut.of(article)


@API.route("POST", f"{API_PREFIX}/knowledge", summary="Write an article", roles=EDITORS,
           body=ArticleIn, response=ArticleOut, status=201)
async def post_article(request: web.Request, principal: Principal, body: ArticleIn
                       ) -> ArticleOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await save_article(session, request.app[CLOCK], principal,
                                     **body.model_dump())
        return ArticleOut.of(article)


@API.route("PATCH", ONE, summary="Edit an article", roles=EDITORS, body=ArticlePatch,
           response=ArticleOut)
async def patch_article(request: web.Request, principal: Principal, body: ArticlePatch
                        ) -> ArticleOut:
    changes = body.model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
        if article is None:
            raise not_found("article not found")
        article = await save_article(session, request.app[CLOCK], principal, article=article,
                                     **changes)
        return ArticleOut.of(article)


@API.route("DELETE", ONE, summary="Retire an article", roles=EDITORS, response=Retired)
async def delete_article(request: web.Request, principal: Principal, _: None) -> Retired:
    """Articles are retired (inactive), not erased: closed orders still point at them."""
    async with request.app[SESSIONMAKER]() as session, session.begin():
        article = await session.get(KnowledgeArticle, path_int(request, "article_id"))
        if article is None:
            raise not_found("article not found")
        await save_article(session, request.app[CLOCK], principal, article=article,
                           active=False)
        return Retired(id=article.id, active=False)


def setup_web(app: web.Application) -> None:
    API.install(app)
