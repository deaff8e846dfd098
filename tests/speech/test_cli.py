"""``callcenter transcribe`` run as an operator runs it: JSON and text per file, a
progress bar, a failed file reported while the others are still written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.speech.pipeline_rig import model_dir, sample


def transcribe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALLCENTER_SPEECH__MODELS__ZH": str(model_dir()),
           "CALLCENTER_SPEECH__POOL_SIZE": "1",
           "CALLCENTER_AUTH__TOKEN_SECRET": "speech-cli-test-" + "x" * 40}
    return subprocess.run([sys.executable, "-m", "callcenter", "transcribe", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_transcribe_writes_json_and_text_into_out_and_reports_a_bad_file(
        tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copyfile(sample("r01"), calls / "r01.wav")
    (calls / "broken.wav").write_bytes(b"not audio")
    result = transcribe(str(calls), "--out", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert "transcribed 1 of 2 file(s)" in result.stdout
    assert "failed: " in result.stderr and "broken.wav: not a PCM WAV file" in result.stderr
    assert "4/4s audio" in result.stderr  # the progress bar reached the end
    data = json.loads((tmp_path / "out" / "r01.json").read_text(encoding="utf-8"))
    assert data["language"] == "zh" and data["duration"] == 4.175
    assert {s["speaker"] for s in data["segments"]} == {"unknown"}
    text = (tmp_path / "out" / "r01.txt").read_text(encoding="utf-8")
    assert text.startswith("[") and "unknown: " in text and "满意" in text
    assert not (calls / "r01.json").exists()
    assert not (tmp_path / "out" / "broken.json").exists()


def test_transcribe_writes_beside_the_file_by_default(tmp_path: Path) -> None:
    target = tmp_path / "a01.wav"
    shutil.copyfile(sample("a01"), target)
    result = transcribe(str(target))
    assert result.returncode == 0, result.stderr
    assert "热线" in (tmp_path / "a01.txt").read_text(encoding="utf-8").replace(" ", "")
    assert (tmp_path / "a01.json").is_file()


def test_transcribe_without_a_model_for_the_language_says_so(tmp_path: Path) -> None:
    result = transcribe(str(sample("r01")), "--language", "en", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "no speech model for language 'en' (speech.models has zh)" in result.stderr
    assert list(tmp_path.iterdir()) == []
