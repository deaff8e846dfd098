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
# files the Asterisk 22 core itself reads at start (main/*.c); without them it logs errors
# (config_options.c: "Unable to load config file") or warnings (indications, ccss)
CORE_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "manager.conf",
    "cdr.conf",
    "features.conf",
    "indications.conf",
    "ccss.conf",
    "udptl.conf",
    "cel.conf",
    "stasis.conf",
    "acl.conf",
)
# every module modules.conf may load, with the config files it reads (Asterisk 22 sources:
# the module's load_module()/load_config()) and the modules it depends on (MODULEINFO)
PJSIP = ("res_pjsip.so",)
KNOWN_MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "res_sorcery_config.so": ((), ()),
    "res_sorcery_memory.so": ((), ()),
    "res_sorcery_astdb.so": ((), ()),
    "res_pjproject.so": (("pjproject.conf",), ("res_sorcery_config.so",)),
    "res_timing_timerfd.so": ((), ()),
    "res_pjsip.so": (
        ("pjsip.conf",),
        (
            "res_pjproject.so",
            "res_sorcery_config.so",
            "res_sorcery_memory.so",
            "res_sorcery_astdb.so",
        ),
    ),
    "res_pjsip_session.so": ((), PJSIP),
    "res_pjsip_pubsub.so": ((), PJSIP),
    "res_pjsip_registrar.so": ((), PJSIP),
    "res_pjsip_authenticator_digest.so": ((), PJSIP),
    "res_pjsip_outbound_authenticator_digest.so": ((), PJSIP),
    "res_pjsip_endpoint_identifier_ip.so": ((), PJSIP),
    "res_pjsip_endpoint_identifier_user.so": ((), PJSIP),
    "res_pjsip_sdp_rtp.so": ((), (*PJSIP, "res_pjsip_session.so")),
    "res_pjsip_caller_id.so": ((), (*PJSIP, "res_pjsip_session.so")),
    "res_pjsip_dtmf_info.so": ((), (*PJSIP, "res_pjsip_session.so")),
    "res_pjsip_nat.so": ((), PJSIP),
    "res_pjsip_rfc3326.so": ((), (*PJSIP, "res_pjsip_session.so")),
    "res_pjsip_refer.so": ((), (*PJSIP, "res_pjsip_session.so", "res_pjsip_pubsub.so")),
    "res_pjsip_logger.so": ((), PJSIP),
    "chan_pjsip.so": ((), (*PJSIP, "res_pjsip_session.so", "res_pjsip_pubsub.so")),
    "res_rtp_asterisk.so": (("rtp.conf",), ()),
    "codec_ulaw.so": ((), ()),
    "codec_alaw.so": ((), ()),
    "codec_a_mu.so": ((), ()),
    "codec_gsm.so": ((), ()),
    "format_wav.so": ((), ()),
    "format_pcm.so": ((), ()),
    "format_gsm.so": ((), ()),
    "format_sln.so": ((), ()),
    "pbx_config.so": (("extensions.conf",), ()),
    "app_dial.so": ((), ()),
    "app_queue.so": (("queues.conf",), ()),
    "app_mixmonitor.so": ((), ()),
    "app_playback.so": ((), ()),
    "app_stack.so": ((), ()),
    "app_userevent.so": ((), ()),
    "app_senddtmf.so": ((), ()),
    "app_verbose.so": ((), ()),
    "res_agi.so": ((), ("res_speech.so",)),
    "res_speech.so": ((), ()),
    "func_callerid.so": ((), ()),
    "func_channel.so": ((), ()),
    "func_cdr.so": ((), ()),
    "func_strings.so": ((), ()),
    "func_logic.so": ((), ()),
    "func_global.so": ((), ()),
    "res_musiconhold.so": (("musiconhold.conf",), ()),
    "bridge_simple.so": ((), ()),
    "bridge_native_rtp.so": ((), ()),
    "bridge_holding.so": ((), ()),
    "bridge_builtin_features.so": ((), ()),
    "bridge_builtin_interval_features.so": ((), ()),
    "cdr_manager.so": (("cdr_manager.conf",), ()),
    "cdr_csv.so": (("cdr.conf",), ()),
    "res_security_log.so": ((), ()),
}
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


def loaded_modules() -> list[str]:
    mods = section("modules.conf", "modules")
    return [*mods.getall("load"), *mods.getall("require"), *mods.getall("preload")]


def test_modules_load_only_known_modules_whose_config_exists() -> None:
    """autoload = no: a stock Asterisk 22 loads exactly this list, so nothing starts without
    its config (77 errors and 15 warnings with autoload = yes: res_ari_* without res_ari,
    modules looking for files this folder does not have)."""
    mods = section("modules.conf", "modules")
    assert mods.get("autoload") == "no"
    loaded = loaded_modules()
    assert len(loaded) == len(set(loaded)), "a module listed twice"
    unknown = [m for m in loaded if m not in KNOWN_MODULES]
    assert unknown == []
    for module in loaded:
        files, needs = KNOWN_MODULES[module]
        for name in files:
            assert (CONF / name).is_file(), f"{module} reads {name}"
            assert sections(name), f"{name} is empty"
        missing = [m for m in needs if m not in loaded]
        assert missing == [], f"{module} depends on {missing}"
    for name in CORE_FILES:
        assert (CONF / name).is_file() and sections(name), f"the core reads {name}"
    assert not any(m.startswith("res_ari") for m in loaded)
    assert "[csv]" in (CONF / "cdr.conf").read_text()  # cdr_csv's section


def test_modules_cover_what_the_config_uses() -> None:
    mods = section("modules.conf", "modules")
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
