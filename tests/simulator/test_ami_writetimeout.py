"""Slow AMI readers: manager.c writes to a session with a blocking write bounded by the user's
`writetimeout` (manager.conf, default and minimum 100 ms) and drops the session when it
expires. A reader that keeps up is not affected."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from callcenter.simulator import Simulator, SimulatorConfig
from callcenter.simulator import events as ev
from callcenter.simulator.ami_server import AmiSession
from callcenter.simulator.config import AmiUserConfig
from callcenter.simulator.scenario import _writetimeout

from .support import RawAmiClient

FLOOD = 300  # events of 8 KB: far more than the shrunken socket buffers hold


async def _stalled_reader(sim: Simulator, username: str) -> tuple[asyncio.StreamWriter, AmiSession]:
    """Log in, then never read again; kernel buffers on both sides are made small."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", sim.ami_port))
    reader, writer = await asyncio.open_connection(sock=sock)
    await reader.readline()
    writer.write(
        f"Action: Login\r\nUsername: {username}\r\nSecret: s3cret\r\nEvents: on\r\n\r\n".encode()
    )
    await reader.readuntil(b"Authentication accepted\r\n\r\n")
    assert sim.ami is not None
    session = next(s for s in sim.ami.sessions if s.username == username)
    assert session.transport is not None
    server_sock = session.transport.get_extra_info("socket")
    server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return writer, session


def _flood(sim: Simulator) -> None:
    for n in range(FLOOD):
        sim.hub.emit("UserEvent", ev.USER, f"UserEvent: flood\r\nN: {n}\r\nData: {'x' * 8000}\r\n")


async def _drop_delay(tmp_path: Path, writetimeout: int) -> tuple[float, int]:
    """Seconds from the flood to the drop of the stalled reader; events the fast one got."""
    sim = Simulator(
        SimulatorConfig(
            port=0,
            seed=3,
            recordings_dir=tmp_path / "rec",
            users=[
                AmiUserConfig(username="slow", secret="s3cret", writetimeout=writetimeout),
                AmiUserConfig(username="fast", secret="s3cret"),
            ],
        )
    )
    await sim.start()
    try:
        fast = RawAmiClient()
        await fast.connect(sim.ami_port)
        assert (await fast.login("fast", "s3cret")).get("Response") == "Success"
        writer, session = await _stalled_reader(sim, "slow")
        loop = asyncio.get_running_loop()
        started = loop.time()
        _flood(sim)
        await asyncio.wait_for(session.gone.wait(), 10)
        elapsed = loop.time() - started
        assert session not in sim.ami.sessions  # type: ignore[union-attr]
        await fast.wait_for(
            lambda m: m.get("UserEvent") == "flood" and m.get("N") == str(FLOOD - 1)
        )
        got = sum(1 for m in fast.messages if m.get("UserEvent") == "flood")
        await fast.close()
        writer.close()
        return elapsed, got
    finally:
        await sim.stop()


async def test_stalled_reader_is_dropped_after_writetimeout(tmp_path: Path) -> None:
    elapsed, got = await _drop_delay(tmp_path, 100)
    assert 0.1 <= elapsed < 2.0
    assert got == FLOOD  # the reader that keeps up gets every event and stays connected


async def test_writetimeout_is_per_user(tmp_path: Path) -> None:
    elapsed, _ = await _drop_delay(tmp_path, 400)
    assert elapsed >= 0.4


def test_writetimeout_from_manager_conf() -> None:
    assert _writetimeout(None) == 100
    assert _writetimeout("250") == 250
    assert _writetimeout("50") == 100  # manager.c: below 100 is rejected, default kept
    assert _writetimeout("x") == 100
