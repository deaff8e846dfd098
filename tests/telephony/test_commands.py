"""The command port: what goes on the wire and what callers get back."""

from __future__ import annotations

import pytest

from callcenter.telephony.commands import CommandPort
from callcenter.telephony.errors import AmiActionError, AmiNotConnected, AmiTimeout
from tests.telephony.asterisk_double import ReplayAsterisk

OK = b"Response: Success\r\nActionID: {ActionID}\r\nMessage: ok\r\n\r\n"


@pytest.fixture
async def port(asterisk: ReplayAsterisk, make_client) -> CommandPort:
    client = make_client()
    await client.start()
    await client.wait_connected(5)
    for name in ("hangup", "redirect", "setvar", "mixmonitor", "stopmixmonitor",
                 "queuepenalty"):
        asterisk.overrides[name] = lambda f: [OK]
    return CommandPort(client)


def _sent(asterisk: ReplayAsterisk) -> dict[str, list[str]]:
    return asterisk.actions[-1]


async def test_simple_actions_send_typed_headers(asterisk, port: CommandPort) -> None:
    await port.hangup("PJSIP/6001-00000000", 16)
    assert _sent(asterisk)["channel"] == ["PJSIP/6001-00000000"]
    assert _sent(asterisk)["cause"] == ["16"]
    await port.redirect("PJSIP/6001-00000000", "survey", "s", 1)
    assert _sent(asterisk)["context"] == ["survey"] and _sent(asterisk)["priority"] == ["1"]
    await port.setvar("PJSIP/6001-00000000", "TICKET", "42")
    assert (_sent(asterisk)["variable"], _sent(asterisk)["value"]) == (["TICKET"], ["42"])
    await port.mix_monitor("PJSIP/6001-00000000", "/tmp/x.wav", "b")
    assert _sent(asterisk)["file"] == ["/tmp/x.wav"] and _sent(asterisk)["options"] == ["b"]
    await port.stop_mix_monitor("PJSIP/6001-00000000")
    assert _sent(asterisk)["action"] == ["StopMixMonitor"]
    await port.queue_penalty("Local/100@agents", 3, "support")
    assert _sent(asterisk)["penalty"] == ["3"]
    await port.queue_pause(None, "Local/100@agents", False)
    assert "queue" not in _sent(asterisk) and _sent(asterisk)["paused"] == ["false"]


async def test_getvar_returns_the_value_or_none(asterisk, port: CommandPort) -> None:
    asterisk.overrides["getvar"] = lambda f: [
        b"Response: Success\r\nActionID: {ActionID}\r\nVariable: " + f["variable"][0].encode()
        + (b"\r\nValue: abc\r\n\r\n" if f["variable"][0] == "SET" else b"\r\nValue: \r\n\r\n")]
    assert await port.getvar("PJSIP/1-1", "SET") == "abc"
    assert await port.getvar("PJSIP/1-1", "EMPTY") == ""


async def test_lists_are_always_lists(asterisk, port: CommandPort) -> None:
    channels = await port.core_show_channels()
    assert len(channels) == 3 and all(c.event == "CoreShowChannel" for c in channels)
    summary = await port.queue_summary("support-slow")
    assert [s.event for s in summary] == ["QueueSummary"]
    status = await port.queue_status("support", member="Local/102@agents")
    assert _sent(asterisk)["member"] == ["Local/102@agents"]
    assert all(isinstance(item.event, str) for item in status)


async def test_sync_originate_failure_is_an_action_error(asterisk, port: CommandPort) -> None:
    asterisk.overrides["originate"] = lambda f: [
        b"Response: Error\r\nActionID: {ActionID}\r\nMessage: Originate failed\r\n\r\n"]
    with pytest.raises(AmiActionError, match="Originate failed"):
        await port.originate("PJSIP/404", application="Playback", data="x", async_=False)
    assert "async" not in _sent(asterisk)


async def test_originate_arguments_are_checked(port: CommandPort) -> None:
    with pytest.raises(ValueError):
        await port.originate("PJSIP/1")
    with pytest.raises(ValueError):
        await port.originate("PJSIP/1", context="a", exten="1", application="Playback")


async def test_every_command_has_a_timeout(asterisk, port: CommandPort) -> None:
    asterisk.silent.add("hangup")
    with pytest.raises(AmiTimeout):
        await port.hangup("PJSIP/1-1", timeout=0.05)


async def test_not_connected(make_client) -> None:
    port = CommandPort(make_client())
    with pytest.raises(AmiNotConnected):
        await port.queue_status()
