"""The AMI connection's life against a restarting Asterisk: Shutdown, booting, backoff.

Real Asterisk 22.10.1 (PROTOCOL.md, "Restart"): ``Event: Shutdown`` then the socket closes;
after the restart logins are accepted while it is still booting and ``FullyBooted`` comes
~100 ms later. Some of these tests measure time on purpose (a backoff, a bounded wait): the
sleeps in them are the measured window, never a way to wait for something to happen.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from callcenter.clock import SystemClock
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig
from callcenter.telephony.errors import AmiNotConnected, AsteriskShutdown
from callcenter.telephony.service import Telephony
from tests.telephony.asterisk_double import ReplayAsterisk
from tests.telephony.conftest import Collector, ami_config

RESYNC_ACTIONS = ("ping", "coreshowchannels", "queuestatus")


def _resync_refused(fields: dict[str, list[str]]) -> list[bytes]:
    """A server that accepts the login but cannot list its channels."""
    return [b"Response: Error\r\nActionID: {ActionID}\r\nMessage: Permission denied\r\n\r\n"]


async def _telephony(asterisk: ReplayAsterisk, **config: object) -> tuple[Telephony, Collector]:
    telephony = Telephony(ami_config(asterisk.port, **config), AgiConfig(port=0), None,
                          SystemClock())
    seen = Collector()
    telephony.add_listener(seen)
    await telephony.start()
    return telephony, seen


def _snapshots(items: list[object]) -> int:
    return sum(isinstance(e, ev.QueuesSnapshot) for e in items)


# -- Event: Shutdown -------------------------------------------------------------------------

async def test_shutdown_fails_pending_actions_at_once_and_reconnects(
        asterisk: ReplayAsterisk, make_client, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(action_timeout=5.0)
    await client.start()
    await client.wait_connected(5)
    asterisk.silent.add("getvar")
    pending = asyncio.create_task(client.action("Getvar", {"Variable": "X"}))
    await asterisk.wait_for(lambda: asterisk.count("getvar") == 1)
    with caplog.at_level(logging.INFO):
        started = time.monotonic()
        asterisk.shutdown(close_after=None)  # the client must act on the event itself
        with pytest.raises(AsteriskShutdown, match="shutting down"):
            await pending
        assert time.monotonic() - started < 1.0  # not the 5 s action timeout
        await asterisk.wait_for(lambda: asterisk.logins == 2)
        await client.wait_connected(5)
    assert issubclass(AsteriskShutdown, AmiNotConnected)  # callers catching it still do
    assert "ami.asterisk_shutdown" in caplog.text and "restart=True" in caplog.text
    assert "ami.reconnect_in" in caplog.text  # through the normal backoff
    assert client.epoch == 2 and (await client.action("Ping")).ping == "Pong"


async def test_other_system_events_keep_the_connection(asterisk: ReplayAsterisk,
                                                       make_client) -> None:
    events = Collector()
    client = make_client(events)
    await client.start()
    await client.wait_connected(5)
    asterisk.send(b"Event: Reload\r\nPrivilege: system,all\r\nModule: All\r\n"
                  b"Status: 2\r\n\r\n")
    await events.wait_for(lambda items: any(e.get("Event") == "Reload" for e in items))
    assert (await client.action("Ping")).ping == "Pong"
    assert client.connected and asterisk.logins == 1 and client.epoch == 1


async def test_restart_closing_the_socket_is_followed_by_a_resync(
        asterisk: ReplayAsterisk) -> None:
    telephony, seen = await _telephony(asterisk)
    try:
        await seen.wait_for(lambda items: _snapshots(items) == 1)
        asterisk.shutdown()  # Shutdown, then the socket closes 20 ms later, like Asterisk
        await seen.wait_for(lambda items: _snapshots(items) == 2)
        kinds = [type(e) for e in seen.items]
        assert ev.AmiDisconnected in kinds
        assert asterisk.logins == 2 and telephony.resyncs == 2
    finally:
        await telephony.stop()


# -- FullyBooted -----------------------------------------------------------------------------

async def test_resync_waits_for_fully_booted(asterisk: ReplayAsterisk) -> None:
    asterisk.booting = True  # logins accepted, FullyBooted not yet sent
    telephony, seen = await _telephony(asterisk, fully_booted_timeout=10.0)
    try:
        await telephony.ami.wait_connected(5)
        await asyncio.sleep(0.3)  # a client that does not wait would resync now
        assert not any(asterisk.count(name) for name in RESYNC_ACTIONS)
        assert not any(isinstance(e, ev.ResyncStarted) for e in seen.items)
        asterisk.boot()
        await seen.wait_for(lambda items: _snapshots(items) == 1)
        assert asterisk.booted_at is not None
        after_boot = [a["action"][0].lower() for a in asterisk.actions[asterisk.booted_at:]]
        assert after_boot == ["ping", "coreshowchannels", "queuestatus"]
    finally:
        await telephony.stop()


async def test_without_fully_booted_the_resync_runs_after_the_timeout(
        asterisk: ReplayAsterisk, caplog: pytest.LogCaptureFixture) -> None:
    asterisk.booting = True  # and never boots: a user without the system read class
    with caplog.at_level(logging.WARNING):
        telephony, seen = await _telephony(asterisk, fully_booted_timeout=0.3)
        try:
            await telephony.ami.wait_connected(5)
            logged_in = time.monotonic()
            await seen.wait_for(lambda items: _snapshots(items) == 1)
            waited = time.monotonic() - logged_in
        finally:
            await telephony.stop()
    assert 0.25 <= waited < 3.0
    assert "ami.fully_booted_missing" in caplog.text and "system read class" in caplog.text


# -- backoff ---------------------------------------------------------------------------------

def _most_logins(window: float, reconnect_min: float, reconnect_max: float) -> int:
    """The most logins possible in ``window`` seconds after the first when the backoff is
    never reset: the shortest delays (half the base, the jitter's floor) back to back."""
    logins, spent, attempt = 1, 0.0, 0
    while True:
        spent += min(reconnect_max, reconnect_min * 2 ** attempt) / 2
        if spent > window:
            return logins
        logins += 1
        attempt += 1


async def test_failing_resyncs_do_not_cause_a_reconnect_storm(
        asterisk: ReplayAsterisk) -> None:
    asterisk.overrides["coreshowchannels"] = _resync_refused
    telephony, _ = await _telephony(asterisk, reconnect_min=0.02, reconnect_max=0.32,
                                    stable_after=5.0)
    try:
        await asterisk.wait_for(lambda: asterisk.logins == 1)
        await asyncio.sleep(1.5)  # the measured window
        logins = asterisk.logins
    finally:
        await telephony.stop()
    # every login is followed by a failed resync and a reconnect; reset after each login,
    # the backoff would allow about 1.5 / 0.02 = 75 logins
    assert 4 <= logins <= _most_logins(1.5, 0.02, 0.32) == 13
    assert telephony.resyncs == 0


async def test_backoff_starts_over_only_after_a_stable_connection(
        asterisk: ReplayAsterisk) -> None:
    asterisk.overrides["coreshowchannels"] = _resync_refused
    telephony, seen = await _telephony(asterisk, reconnect_min=0.05, reconnect_max=0.8,
                                       stable_after=0.3)
    client = telephony.ami
    try:
        await asterisk.wait_for(lambda: asterisk.logins >= 5, timeout=10)
        del asterisk.overrides["coreshowchannels"]
        await seen.wait_for(lambda items: _snapshots(items) == 1, timeout=10)
        # resynced, but dropped before it was stable: the backoff goes on growing
        assert client.failures >= 4
        logins = asterisk.logins
        dropped = time.monotonic()
        asterisk.drop()
        await asterisk.wait_for(lambda: asterisk.logins == logins + 1, timeout=10)
        assert time.monotonic() - dropped >= 0.4  # half of the 0.8 s cap at least
        assert client.failures >= 5
        # resynced and up for longer than stable_after: the backoff starts over
        await seen.wait_for(lambda items: _snapshots(items) == 2, timeout=10)
        await asyncio.sleep(0.4)  # the connection stays up past stable_after (0.3 s)
        asterisk.drop()
        await asterisk.wait_for(lambda: asterisk.logins == logins + 2, timeout=10)
        assert client.failures == 1  # the first delay of a fresh backoff (<= 0.05 s) was used
    finally:
        await telephony.stop()
