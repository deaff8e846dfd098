import asyncpg
import redis.asyncio as aioredis


async def test_db_url_gives_an_empty_database(db_url):
    assert db_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://"))
    if db_url.startswith("postgresql"):
        conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
        try:
            tables = "select count(*) from pg_tables where schemaname='public'"
            assert await conn.fetchval(tables) == 0
        finally:
            await conn.close()


async def test_redis_prefix_is_isolated(redis_url, redis_prefix):
    client = aioredis.Redis.from_url(redis_url)
    await client.set(redis_prefix + "k", "v")
    assert await client.get(redis_prefix + "k") == b"v"
    await client.aclose()
