"""The AMI client against a replaying Asterisk over real TCP."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest

from callcenter.telephony.ami import AmiClient
from callcenter.telephony.commands import CommandPort
from callcenter.telephony.errors import AmiActionError, AmiNotConnected, AmiTimeout
from tests.telephony.asterisk_double import ReplayAsterisk
from tests.telephony.conftest import Collector, ami_config


async def _connected(make_client, **kw) -> tuple[AmiClient, Collector]:
    events = Collector()
    client = make_client(events, **kw)
    await client.start()
    await client.wait_connected(5)
    return client, events


async def test_md5_login(asterisk: ReplayAsterisk, make_client) -> None:
    client, events = await _connected(make_client)
    assert client.banner == "Asterisk Call Manager/11.0.0"
    names = [a["action"][0] for a in asterisk.actions]
    assert names == ["Challenge", "Login"]
    assert "key" in asterisk.actions[1] and "secret" not in asterisk.actions[1]
    await events.wait_for(lambda items: any(e.get("Event") == "FullyBooted" for e in items))


async def test_plain_login(asterisk: ReplayAsterisk, make_client) -> None:
    await _connected(make_client, auth="plain")
    assert [a["action"][0] for a in asterisk.actions] == ["Login"]
    assert asterisk.actions[0]["secret"] == ["CHANGE_ME"]


async def test_list_actions_complete_on_eventlist_complete(asterisk, make_client) -> None:
    client, _ = await _connected(make_client)
    channels = await client.list_action("CoreShowChannels")
    assert [c["Event"] for c in channels] == ["CoreShowChannel"] * 3
    assert channels[0]["uniqueid"] == "1795239874.3"  # panoramisk Message: case-insensitive
    status = await client.list_action("QueueStatus")
    assert [s.event for s in status] == ["QueueParams", "QueueMember", "QueueParams",
                                         "QueueMember", "QueueMember"]
    asterisk.variant["coreshowchannels"] = 1  # the empty listing
    assert await client.list_action("CoreShowChannels") == []


async def test_single_replies_complete_on_response(asterisk, make_client) -> None:
    """panoramisk's QueueAdd future never completes (issue 54); ours does."""
    client, _ = await _connected(make_client)
    port = CommandPort(client)
    await port.queue_add("support", "Local/102@agents", "Agent 102", penalty=0)
    await port.queue_pause("support", "Local/102@agents", True, "lunch")
    await port.queue_remove("support", "Local/102@agents")
    asterisk.variant["queueremove"] = 1
    with pytest.raises(AmiActionError) as error:
        await port.queue_remove("support", "Local/102@agents")
    assert error.value.message == "Unable to remove interface: Not there"
    assert asterisk.actions[-1]["queue"] == ["support"]


async def test_unknown_action_is_a_clear_error(make_client) -> None:
    client, _ = await _connected(make_client)
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await client.action("NoSuchThing")


async def test_async_originate_resolves_with_originate_response(asterisk, make_client) -> None:
    client, _ = await _connected(make_client)
    port = CommandPort(client)
    outcome = await port.originate("Local/s@caller-sim", context="queue-test", exten="s",
                                   caller_id="Sim Caller <5551000>")
    assert outcome.answered and outcome.uniqueid == "1795239874.0"
    sent = asterisk.actions[-1]
    assert sent["async"] == ["true"] and sent["variable"] == ["CC_DIRECTION=outbound"]
    asterisk.overrides["originate"] = lambda f: [
        b"Response: Success\r\nActionID: {ActionID}\r\nMessage: Originate successfully queued"
        b"\r\n\r\n",
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {ActionID}\r\n"
        b"Response: Failure\r\nChannel: PJSIP/13800000000@trunk\r\nReason: 5\r\n"
        b"Uniqueid: <null>\r\n\r\n"]
    busy = await port.originate("PJSIP/13800000000@trunk", application="Playback",
                                data="hello-world", variables={"TICKET": "42"})
    assert (busy.success, busy.outcome) == (False, "busy")
    assert asterisk.actions[-1]["variable"] == ["CC_DIRECTION=outbound", "TICKET=42"]


async def test_play_dtmf_queued_reply_completes(asterisk, make_client) -> None:
    """panoramisk 1.4 crashes with KeyError 'async' on this reply."""
    client, _ = await _connected(make_client)
    asterisk.overrides["playdtmf"] = lambda f: [
        b"Response: Success\r\nActionID: {ActionID}\r\nMessage: DTMF successfully queued"
        b"\r\n\r\n"]
    await CommandPort(client).play_dtmf("PJSIP/6001-00000000", "5")
    assert client.connected


async def test_timeout_and_stray_reply_do_not_stop_events(asterisk, make_client,
                                                          caplog) -> None:
    client, events = await _connected(make_client)
    asterisk.silent.add("getvar")
    with pytest.raises(AmiTimeout):
        await client.action("Getvar", {"Variable": "X"}, timeout=0.05)
    late_id = asterisk.actions[-1]["actionid"][0]
    with caplog.at_level(logging.WARNING):
        asterisk.send(f"Response: Success\r\nActionID: {late_id}\r\nValue: 1\r\n\r\n".encode())
        asterisk.send(b"Response: Success\r\nMessage: no id at all\r\n\r\n")
        asterisk.send(b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Ping\r\n\r\n")
        await events.wait_for(lambda items: any(e.get("UserEvent") == "Ping" for e in items))
    assert caplog.text.count("ami.stray_response") == 2
    assert (await client.action("Ping")).ping == "Pong"


async def test_malformed_input_is_skipped_and_later_events_processed(
        asterisk, make_client, captures_dir: Path, caplog) -> None:
    client, events = await _connected(make_client)
    capture = (captures_dir / "queue_call.raw").read_bytes().split(b"\r\n", 1)[1]
    with caplog.at_level(logging.WARNING):
        asterisk.send(b"%%%% garbage line\r\nmore garbage\r\n\r\n")
        asterisk.send(b"Event: Newchannel\r\nChannel: truncated\r\n")  # no blank line ...
        asterisk.send(b"Event: Hangup\r\nPrivilege: call,all\r\nCause: 16\r\n\r\n")  # glued
        asterisk.send(b"Event: Hangup\r\nPrivilege: call,all\r\n\r\n")  # missing fields
        asterisk.send(capture)
        await events.wait_for(lambda items: sum(e.get("Event") == "Hangup" for e in items) == 5)
    hangups = [e for e in events.items if e.get("Event") == "Hangup"]
    assert "Uniqueid" not in hangups[0]  # delivered raw; the translator skips it (logged)
    assert all("Uniqueid" in h for h in hangups[1:])
    assert "ami.malformed_message" in caplog.text
    assert client.connected


async def test_login_refused_is_retried_with_backoff(asterisk, make_client) -> None:
    asterisk.refuse_logins = True
    client = make_client()
    await client.start()
    await asterisk.wait_for(lambda: asterisk.connections_made >= 3)
    assert not client.connected
    asterisk.refuse_logins = False
    await client.wait_connected(5)
    assert asterisk.logins == 1


async def test_refused_challenge_is_retried(asterisk, make_client) -> None:
    asterisk.refuse_challenges = True
    client = make_client()
    await client.start()
    await asterisk.wait_for(lambda: asterisk.count("challenge") >= 3)
    assert not client.connected and client._task is not None and not client._task.done()
    asterisk.refuse_challenges = False
    await client.wait_connected(5)


async def test_wrong_secret_is_refused(asterisk, make_client) -> None:
    from pydantic import SecretStr
    client = make_client(secret=SecretStr("wrong"))
    await client.start()
    await asterisk.wait_for(lambda: asterisk.connections_made >= 2)
    assert not client.connected and asterisk.logins == 0


async def test_reconnect_after_drop_never_resends(asterisk, make_client) -> None:
    client, _ = await _connected(make_client)
    asterisk.silent.add("originate")
    port = CommandPort(client)
    dialling = asyncio.create_task(port.originate("PJSIP/100", context="x", exten="1"))
    await asterisk.wait_for(lambda: asterisk.count("originate") == 1)
    old_id = asterisk.actions[-1]["actionid"][0]
    epoch = client.epoch
    asterisk.drop()
    with pytest.raises(AmiNotConnected):
        await dialling
    await asterisk.wait_for(lambda: asterisk.logins == 2)
    await client.wait_connected(5)
    assert client.epoch == epoch + 1
    # a reply to the old request arriving on the new connection completes nothing
    asterisk.silent.add("getvar")
    pending = asyncio.create_task(client.action("Getvar", {"Variable": "X"}, timeout=0.3))
    await asterisk.wait_for(lambda: asterisk.count("getvar") == 1)
    asterisk.send(f"Response: Success\r\nActionID: {old_id}\r\nMessage: late\r\n\r\n".encode())
    with pytest.raises(AmiTimeout):
        await pending
    await client.action("Ping")
    assert asterisk.count("originate") == 1


async def test_keepalive_timeout_reconnects(asterisk, make_client) -> None:
    asterisk.silent.add("ping")
    client, _ = await _connected(make_client, ping_interval=0.05, action_timeout=0.1)
    await asterisk.wait_for(lambda: asterisk.logins >= 2)
    await client.wait_connected(5)


async def test_actions_fail_fast_when_not_connected() -> None:
    client = AmiClient(ami_config(1), lambda f: None)
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")


async def test_connection_refused_keeps_retrying(unused_tcp_port_factory=None) -> None:
    server = ReplayAsterisk([])
    port = await server.start()
    await server.stop()  # nothing listens on this port now
    client = AmiClient(ami_config(port), lambda f: None)
    await client.start()
    try:
        await asyncio.wait_for(asyncio.shield(client._task), 0.2)
    except TimeoutError:
        pass  # still retrying, as it should
    assert not client.connected and client._task is not None and not client._task.done()
    await client.stop()


def test_backoff_is_exponential_capped_and_jittered() -> None:
    client = AmiClient(ami_config(1, reconnect_min=0.5, reconnect_max=8.0), lambda f: None,
                       rng=random.Random(7))
    delays = [client.backoff_delay(n) for n in range(10)]
    for n, delay in enumerate(delays):
        base = min(8.0, 0.5 * 2 ** n)
        assert base / 2 <= delay <= base
    assert max(delays) <= 8.0
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jitter at the cap
