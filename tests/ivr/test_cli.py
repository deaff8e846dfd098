"""``callcenter prompts build``: checks the flows, builds and installs every prompt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.ivr.rig import FLOWS, REPO


def run(tmp_path: Path, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "callcenter", "prompts", "build", *args], cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CALLCENTER_IVR__CACHE_DIR": str(cache), "PYTHONPATH": str(REPO),
             **env})


def test_prompts_build_installs_every_prompt_of_the_flows(
        tmp_path: Path, prompt_dirs: tuple[Path, Path]) -> None:
    done = run(tmp_path, prompt_dirs[1], "--sounds-dir", str(tmp_path / "sounds"))
    assert done.returncode == 0, done.stderr
    assert f"32 prompts in {tmp_path / 'sounds'}: 0 recorded, 0 synthesized, 32 from the " \
           "cache; 32 installed or updated" in done.stdout
    assert (tmp_path / "sounds" / "zh" / "main-menu.wav").is_file()
    assert (tmp_path / "sounds" / "en" / "main-menu.wav").is_file()


def test_prompts_build_refuses_a_broken_flow(tmp_path: Path,
                                             prompt_dirs: tuple[Path, Path]) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "prompts.toml").write_text((FLOWS / "prompts.toml").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    text = (FLOWS / "hotline.toml").read_text(encoding="utf-8")
    (flows / "hotline.toml").write_text(text.replace('next = "check"', 'next = "chek"', 1),
                                        encoding="utf-8")
    done = run(tmp_path, prompt_dirs[1], CALLCENTER_IVR__FLOWS_DIR=str(flows))
    assert done.returncode == 2
    assert f"{flows / 'hotline.toml'}: node 'english_offer': next goes to 'chek'" in done.stderr
