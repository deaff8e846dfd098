"""MixMonitor WAV writer with the real speech samples in shared/speech-samples/."""

from __future__ import annotations

import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from callcenter.simulator.wav import (
    PcmAudio,
    Segment,
    WavError,
    duration_of,
    read_pcm,
    write_mixmonitor,
)


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> dict[str, PcmAudio]:
    folder = shared_dir / "speech-samples"
    names = ["c01", "a01", "c02"]
    missing = [n for n in names if not (folder / f"{n}.wav").is_file()]
    assert not missing, f"speech samples missing in {folder}: {missing}"
    return {name: read_pcm(folder / f"{name}.wav") for name in names}


def read_frames(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if params.nchannels == 2:
        data = data.reshape(-1, 2)
    return params, data


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def test_read_pcm_real_sample(samples: dict[str, PcmAudio], shared_dir: Path) -> None:
    audio = samples["c01"]
    assert audio.samples.dtype == np.int16 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(11.9, abs=0.01)
    assert duration_of(shared_dir / "speech-samples" / "c01.wav") == pytest.approx(11.9, abs=0.01)
    assert np.abs(audio.samples).max() > 1000  # real speech, not silence


def test_stereo_caller_left_agent_right(tmp_path: Path, samples: dict[str, PcmAudio]) -> None:
    caller, agent = samples["c01"], samples["a01"]
    path = tmp_path / "monitor" / "2026" / "1795239927.16.wav"  # parent folders created
    segments = [Segment(agent, 0.5, "agent"), Segment(caller, 3.0, "caller")]  # overlapping
    write_mixmonitor(path, segments, 20.0, stereo=True)
    params, frames = read_frames(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 8000)
    assert params.nframes == 160_000 and duration_of(path) == 20.0
    left, right = frames[:, 0], frames[:, 1]
    start = 3 * 8000
    window = slice(start, start + len(caller.samples))
    assert correlation(left[window], caller.samples) > 0.99
    assert abs(correlation(right[window], caller.samples)) < 0.2
    agent_window = slice(4000, 4000 + len(agent.samples))
    assert correlation(right[agent_window], agent.samples) > 0.99
    assert not left[:start].any()  # silence before the caller speaks
    assert not right[4000 + len(agent.samples) :].any()
    assert not list(path.parent.glob(".*.part"))  # no temporary file left


def test_mono_mix_and_cut_at_end(tmp_path: Path, samples: dict[str, PcmAudio]) -> None:
    caller, agent = samples["c02"], samples["a01"]
    path = tmp_path / "mono.wav"
    write_mixmonitor(
        path, [Segment(caller, 0.0, "caller"), Segment(agent, 2.0, "agent")], 5.0, stereo=False
    )
    params, frames = read_frames(path)
    assert (params.nchannels, params.nframes) == (1, 40_000)
    expected = np.zeros(40_000, dtype=np.int32)
    expected[: len(caller.samples)] += caller.samples[:40_000]
    expected[16_000:] += agent.samples[:24_000]  # the agent's turn is cut at 5 s
    assert np.array_equal(frames, np.clip(expected, -32768, 32767))


def test_mono_mix_clips(tmp_path: Path) -> None:
    loud = PcmAudio(np.full(800, 30000, dtype=np.int16))
    quiet = PcmAudio(np.full(800, -30000, dtype=np.int16))
    path = tmp_path / "clip.wav"
    write_mixmonitor(
        path,
        [
            Segment(loud, 0.0, "caller"),
            Segment(loud, 0.0, "agent"),
            Segment(quiet, 0.2, "caller"),
            Segment(quiet, 0.2, "agent"),
        ],
        0.5,
        stereo=False,
    )
    _, frames = read_frames(path)
    assert frames[:800].tolist() == [32767] * 800
    assert frames[1600:2400].tolist() == [-32768] * 800
    assert not frames[2400:].any()


def test_segments_after_the_end_and_empty_call(tmp_path: Path) -> None:
    beep = PcmAudio(np.ones(100, dtype=np.int16))
    path = tmp_path / "short.wav"
    write_mixmonitor(path, [Segment(beep, 3.0, "caller")], 1.0, stereo=True)
    assert duration_of(path) == 1.0
    write_mixmonitor(path, [], 0.0, stereo=False)  # replaced atomically
    assert duration_of(path) == 0.0


def test_wrong_formats_are_named(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo16k.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\0" * 64)
    with pytest.raises(WavError) as info:
        read_pcm(stereo)
    assert str(stereo) in str(info.value)
    assert "sample rate 16000 Hz" in str(info.value) and "2 channels" in str(info.value)
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio")
    with pytest.raises(WavError, match="not a PCM WAV"):
        read_pcm(not_wav)
    with pytest.raises(WavError, match="no such file"):
        read_pcm(tmp_path / "missing.wav")


FULL_DISK_SCRIPT = """
import resource, signal, sys
import numpy as np
from callcenter.simulator.wav import PcmAudio, Segment, WavError, write_mixmonitor
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
audio = PcmAudio(np.ones(8000, dtype=np.int16))
try:
    write_mixmonitor(sys.argv[1], [Segment(audio, 0.0, "caller")], 2.0, stereo=False)
except WavError as exc:
    print("WavError:", exc)
"""


def test_full_disk_leaves_no_partial_file(tmp_path: Path) -> None:
    """The kernel refuses the write (file size limit, like ENOSPC): clear error, no file."""
    target = tmp_path / "rec" / "full.wav"
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("WavError: ")
    assert str(target) in result.stdout and "cannot write recording" in result.stdout
    assert list(target.parent.iterdir()) == []


def test_one_hour_is_fast(tmp_path: Path, samples: dict[str, PcmAudio]) -> None:
    segments = []
    for minute in range(60):
        segments.append(Segment(samples["c01"], minute * 60.0, "caller"))
        segments.append(Segment(samples["a01"], minute * 60.0 + 20, "agent"))
    path = tmp_path / "hour.wav"
    started = time.perf_counter()
    write_mixmonitor(path, segments, 3600.0, stereo=True)
    elapsed = time.perf_counter() - started
    assert duration_of(path) == 3600.0
    assert elapsed < 5.0, f"1 h stereo took {elapsed:.2f}s"  # ~0.3 s on an idle core
