"""Knowledge base: agents search in Chinese during a call; supervisors keep the articles."""

from __future__ import annotations

from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_user, test_auth_config, token_for

ARTICLES = [
    {"title": "计划停水和突发停水的查询与处理", "topic": "public_services",
     "tags": ["停水", "供水"],
     "body": "自来水公司计划停水会提前24小时在小区公告。突发断水可拨打供水抢修电话，"
             "热线可转派供水公司核实恢复供水时间。"},
    {"title": "夜间施工噪音投诉的受理", "topic": "environment", "tags": ["噪音", "夜间施工"],
     "body": "晚上22时至次日6时禁止产生噪声的建筑施工作业，抢修抢险和取得夜间施工许可的除外。"
             "市民反映工地夜里施工扰民的，转城管执法部门现场查处。"},
    {"title": "物业费上涨的政策依据", "topic": "property", "tags": ["物业费"],
     "body": "住宅物业服务收费实行政府指导价或市场调节价，调整物业管理费须经业主大会同意并公示。"},
    {"title": "灵活就业人员养老保险缴费", "topic": "social_security", "tags": ["社保"],
     "body": "灵活就业人员可在户籍地或居住地社保经办机构办理参保，缴费基数可在规定范围内自选。"},
]


async def test_agents_search_supervisors_edit(client, sessionmaker, clock):
    config = test_auth_config()
    supervisor = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    as_supervisor = bearer(token_for(supervisor, config, clock))
    as_agent = bearer(token_for(agent, config, clock))

    assert (await client.post("/api/v1/knowledge", headers=as_agent,
                              json=ARTICLES[0])).status == 403
    ids = []
    for article in ARTICLES:
        response = await client.post("/api/v1/knowledge", headers=as_supervisor, json=article)
        assert response.status == 201
        ids.append((await response.json())["id"])

    async def search(q, headers=as_agent):
        response = await client.get("/api/v1/knowledge", params={"q": q}, headers=headers)
        assert response.status == 200
        return [a["id"] for a in (await response.json())["articles"]]

    assert (await search("家里没水了怎么办"))[0] == ids[0]  # 没水 → 停水
    assert (await search("工地半夜施工太吵"))[0] == ids[1]  # 半夜 → 夜间, 太吵 ~ 噪音
    assert (await search("物业管理费涨价"))[0] == ids[2]
    assert (await search("社保"))[0] == ids[3]
    assert await search("护照办理") == []

    # Retire an article: search no longer offers it; editing re-indexes.
    assert (await client.delete(f"/api/v1/knowledge/{ids[2]}", headers=as_supervisor)).ok
    assert ids[2] not in await search("物业管理费涨价")

    async def listed(headers):
        response = await client.get("/api/v1/knowledge", headers=headers)
        return {a["id"] for a in (await response.json())["articles"]}

    assert ids[2] not in await listed(as_agent)  # agents list live answers only
    assert ids[2] in await listed(as_supervisor)  # editors also see the retired ones
    patched = await client.patch(f"/api/v1/knowledge/{ids[3]}", headers=as_supervisor,
                                 json={"title": "城乡居民医疗保险缴费", "tags": ["医保"]})
    assert patched.status == 200
    assert await search("医保") == [ids[3]]
    assert (await client.get("/api/v1/knowledge?q=停水")).status == 401


async def test_retired_articles_are_read_only_by_their_editors(client, sessionmaker, clock):
    config = test_auth_config()
    tokens = {role: bearer(token_for(await make_user(sessionmaker, clock, role=role), config,
                                     clock)) for role in Role}
    created = await client.post("/api/v1/knowledge", headers=tokens[Role.SUPERVISOR],
                                json={"title": "停水查询", "body": "拨打供水热线。"})
    url = f"/api/v1/knowledge/{(await created.json())['id']}"
    assert (await client.get(url, headers=tokens[Role.AGENT])).status == 200
    assert (await client.delete(url, headers=tokens[Role.SUPERVISOR])).status == 200
    for reader in (Role.AGENT, Role.UNIT_HANDLER):
        assert (await client.get(url, headers=tokens[reader])).status == 404
    for editor in (Role.SUPERVISOR, Role.ADMIN):
        response = await client.get(url, headers=tokens[editor])
        assert response.status == 200 and (await response.json())["active"] is False
