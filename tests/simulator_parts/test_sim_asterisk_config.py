"""config/asterisk is mounted at /etc/asterisk by docker/docker-compose.yml: it must be a
complete, self-consistent Asterisk 22 configuration, and the simulator must read the same
files the real Asterisk reads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from callcenter.simulator import Caller, Simulator, SimulatorConfig
from callcenter.simulator.asterisk_conf import ConfSection, ast_true, parse_conf
from callcenter.simulator.config import REPO_ROOT

CONF = REPO_ROOT / "config" / "asterisk"
REQUIRED_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "rtp.conf",
    "musiconhold.conf",
    "cdr.conf",
    "cdr_manager.conf",
    "manager.conf",
    "extensions.conf",
    "queues.conf",
    "pjsip.conf",
)
# dialplan application → the module that provides it (Asterisk 22)
APP_MODULES = {
    "Dial": "app_dial.so",
    "Queue": "app_queue.so",
    "MixMonitor": "app_mixmonitor.so",
    "AGI": "res_agi.so",
    "Playback": "app_playback.so",
}


def sections(name: str) -> list[ConfSection]:
    return parse_conf(CONF / name)


def section(name: str, title: str) -> ConfSection:
    return next(s for s in sections(name) if s.name == title)


def test_every_file_exists_and_parses() -> None:
    for name in REQUIRED_FILES:
        assert (CONF / name).is_file(), name
        assert sections(name), name


def test_modules_cover_what_the_config_uses() -> None:
    mods = section("modules.conf", "modules")
    assert ast_true(mods.get("autoload"))
    required = set(mods.getall("require"))
    assert not required & set(mods.getall("noload"))
    dialplan = (CONF / "extensions.conf").read_text()
    used_apps = set(re.findall(r"\b([A-Za-z]+)\(", dialplan))
    for app, module in APP_MODULES.items():
        if app in used_apps:
            assert module in required, f"{app} needs {module}"
    assert {"chan_pjsip.so", "res_pjsip.so", "pbx_config.so", "cdr_manager.so"} <= required
    assert "bridge_simple.so" in required  # two-party bridges (BridgeTechnology simple_bridge)
    assert "format_wav.so" in required  # MixMonitor writes .wav


def test_files_agree_with_each_other() -> None:
    classes = {s.name for s in sections("musiconhold.conf")}
    for queue in sections("queues.conf"):
        if queue.name != "general":
            assert (queue.get("musicclass") or "default") in classes, queue.name
    rtp = section("rtp.conf", "general")
    assert 1024 < int(rtp.get("rtpstart") or 0) < int(rtp.get("rtpend") or 0) <= 65535
    assert ast_true(section("cdr_manager.conf", "general").get("enabled"))
    assert ast_true(section("cdr.conf", "general").get("enable"))
    user = section("manager.conf", "callcenter")
    assert "cdr" in (user.get("read") or "").split(",")  # Cdr events reach the service
    assert int(user.get("writetimeout") or 0) >= 100
    logger = section("logger.conf", "general")
    assert ast_true(logger.get("queue_log"))
    assert section("asterisk.conf", "options").get("systemname") is None


async def test_simulator_reads_systemname_and_cdr_manager(tmp_path: Path) -> None:
    confdir = tmp_path / "asterisk"
    shutil.copytree(CONF, confdir)
    options = confdir / "asterisk.conf"
    options.write_text(options.read_text() + "systemname = hotline1\n")
    cdr = confdir / "cdr_manager.conf"
    cdr.write_text(cdr.read_text().replace("enabled = yes", "enabled = no"))
    sim = Simulator(
        SimulatorConfig(
            port=0,
            time_scale=0.01,
            asterisk_config_dir=confdir,
            recordings_dir=tmp_path,
            agi_port=9,  # nobody listens: the IVR fails fast, the call goes on to the queue
        )
    )
    await sim.start()
    try:
        log = sim.record_events()
        call = sim.place_call("13800000001", behaviour=Caller(max_duration=1))
        assert re.fullmatch(r"hotline1-\d+\.\d+", call.uniqueid)
        await call.ended
        await sim.wait_idle()
        assert "Hangup" in log.names() and "Cdr" not in log.names()
    finally:
        await sim.stop()
