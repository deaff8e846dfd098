"""The ``callcenter`` command run as a real subprocess, as an operator would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "callcenter.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "cc.db"}"\n'
        '[web]\nhost = "127.0.0.1"\nport = 0\n' + extra, encoding="utf-8")
    return path


def test_serve_with_a_bad_config_names_the_key_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[database]\nurl = "sqlite+aiosqlite:///x.db"\n[web]\nport = "eighty"\n',
                    encoding="utf-8")
    result = cli("serve", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}: web.port:" in result.stderr
    assert "valid integer" in result.stderr


def test_serve_in_production_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[service]\nmode = "production"\n')
    result = cli("serve", "--config", str(path), env={"CALLCENTER_AMI__SECRET": ""})
    assert result.returncode == 2
    assert "ami.secret" in result.stderr


@pytest.mark.parametrize("variable, url, named", [
    ("CALLCENTER_DATABASE__URL", "postgresql+asyncpg://cc:s3cret@127.0.0.1:{port}/cc",
     "cannot reach the database postgresql+asyncpg://cc:***@127.0.0.1:{port}/cc"),
    ("CALLCENTER_BUS__REDIS_URL", "redis://:s3cret@127.0.0.1:{port}/0",
     "cannot reach Redis at redis://:***@127.0.0.1:{port}/0"),
], ids=["database", "redis"])
def test_serve_names_a_server_it_cannot_reach_without_its_password(
        tmp_path: Path, variable: str, url: str, named: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("serve", "--config", str(config_file(tmp_path)), "--role", "web",
                 env={"CALLCENTER_BUS__BACKEND": "redis", variable: url.format(port=port)})
    assert result.returncode == 1
    assert named.format(port=port) in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_config_check_summarises_a_good_file(tmp_path: Path) -> None:
    result = cli("config", "check", "--config", str(config_file(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_serve_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("db", "upgrade", "--config", str(path), "--revision", "0001_calls")
    assert result.returncode == 0, result.stderr
    assert "database at revision 0001_calls" in result.stdout
    result = cli("serve", "--config", str(path), "--role", "web")
    assert result.returncode == 1
    assert "callcenter db upgrade" in result.stderr


async def test_serve_migrates_an_empty_database_serves_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    path = config_file(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "serve", "--config", str(path),
         "--role", "web", "--role", "workers"],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        port = _wait_for_port(process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["checks"]["database"]["ok"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert "current" in cli("db", "current", "--config", str(path)).stdout


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    """Read the service's log until it says which port it listens on."""
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError("service exited early:\n" + "".join(seen))
        seen.append(line)
        match = re.search(r"service started .*web_port=(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError("service did not report its port:\n" + "".join(seen))


def test_demo_shows_where_to_look_and_calls_flowing(tmp_path: Path) -> None:
    path = config_file(tmp_path, f'[simulator]\nrecordings_dir = "{tmp_path / "rec"}"\n')
    process = subprocess.run(
        [sys.executable, "-m", "callcenter", "demo", "--config", str(path),
         "--duration", "5", "--calls-per-minute", "120"],
        cwd=tmp_path, capture_output=True, text=True, timeout=90,
        env={**os.environ, "CALLCENTER_SHARED": str(REPO.parent / "shared")})
    assert process.returncode == 0, process.stderr
    out = process.stdout
    for where in ("/healthz", "/metrics", "/api/v1/", "call_log", "/ui/dashboard",
                  "/ui/report", "/ui/tickets", "/ui/wallboard", "/ui/desktop as user agent"):
        assert where in out
    assert "AMI connected" in out
    assert "100 agents answer queue hotline" in out  # sized to the load, capped
    assert re.search(r"live calls [1-9]\d* \(talking \d+, waiting in queue \d+, "
                     r"IVR or ringing \d+\)", out), out
    placed = re.search(r"demo stopped: (\d+) calls placed", out)
    assert placed and int(placed.group(1)) > 0
    assert (tmp_path / "var" / "demo.log").is_file()
