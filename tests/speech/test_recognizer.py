"""Vosk decoding of real recordings: a stereo MixMonitor file gives a two-speaker
transcript, a mono file one unknown speaker, and bad input a clear reason."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import pytest

from callcenter.speech import recognizer
from callcenter.speech.errors import TranscriptionError
from callcenter.speech.pool import DecoderPool
from callcenter.speech.recognizer import load_model, model_problem, transcribe_file
from callcenter.speech.transcript import Transcript
from tests.speech.pipeline_rig import decoder_pool, model_dir, sample, stereo_call  # noqa: F401


def chars(transcript: Transcript, speaker: str) -> str:
    return "".join(s.text.replace(" ", "") for s in transcript.of(speaker))


async def test_stereo_call_is_transcribed_per_speaker(tmp_path: Path,
                                                      decoder_pool: DecoderPool) -> None:  # noqa: F811
    """The agent greets on the right channel, then the citizen answers on the left."""
    path = stereo_call(tmp_path / "call.wav", caller=[("r01", 6.0)], agent=[("a01", 0.0)],
                       duration=10.5)
    decoded = await decoder_pool.transcribe(path, model_dir(), "zh")
    transcript = Transcript.from_json(decoded.transcript)
    assert decoded.audio_seconds == 10.5
    assert transcript.duration == 10.5 and transcript.model == "vosk-model-small-cn-0.22"
    assert {s.speaker for s in transcript.segments} == {"citizen", "agent"}
    assert "热线" in chars(transcript, "agent") and "满意" not in chars(transcript, "agent")
    assert "满意" in chars(transcript, "citizen") and "热线" not in chars(transcript, "citizen")
    citizen = transcript.of("citizen")
    assert citizen[0].start >= 6.0 and citizen[-1].end <= 10.5
    assert transcript.of("agent")[0].start < 1.0
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    word = citizen[0].words[0]
    assert word.start < word.end and 0.0 < word.confidence <= 1.0


async def test_mono_recording_has_one_unknown_speaker(decoder_pool: DecoderPool) -> None:  # noqa: F811
    decoded = await decoder_pool.transcribe(sample("r01"), model_dir(), "zh")
    transcript = Transcript.from_json(decoded.transcript)
    assert {s.speaker for s in transcript.segments} == {"unknown"}
    assert "不满意" in chars(transcript, "unknown")
    assert decoded.audio_seconds == 4.175


async def test_a_file_that_is_not_a_wav_is_refused_with_its_name(
        tmp_path: Path, decoder_pool: DecoderPool) -> None:  # noqa: F811
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00garbage")
    with pytest.raises(TranscriptionError, match=r"broken\.wav: not a PCM WAV file"):
        await decoder_pool.transcribe(bad, model_dir(), "zh")


async def test_8_bit_audio_is_refused_saying_what_is_needed(
        tmp_path: Path, decoder_pool: DecoderPool) -> None:  # noqa: F811
    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 8000)
    with pytest.raises(TranscriptionError, match=r"8-bit samples.*need 16-bit PCM"):
        await decoder_pool.transcribe(path, model_dir(), "zh")


def test_a_missing_or_incomplete_model_is_named_without_loading(tmp_path: Path) -> None:
    assert model_problem(model_dir()) is None
    assert model_problem(tmp_path / "nope") == f"speech model directory {tmp_path / 'nope'} " \
                                                "is missing"
    (tmp_path / "half" / "conf").mkdir(parents=True)
    (tmp_path / "half" / "conf" / "model.conf").write_text("")
    assert model_problem(tmp_path / "half") == "speech model half is incomplete (no am/final.mdl)"
    with pytest.raises(TranscriptionError, match="speech model directory .* is missing"):
        transcribe_file(sample("r01"), tmp_path / "nope", "zh")


def test_a_model_directory_is_loaded_once_per_process(tmp_path: Path) -> None:
    """Every recognizer of the process shares the one loaded model."""
    first = load_model(model_dir())
    assert load_model(model_dir()) is first
    assert load_model(Path(str(model_dir()))) is first


def test_a_file_decodes_the_same_whatever_the_process_decoded_before() -> None:
    """Kaldi's dither draws on the process's ``rand()``: without a reseed per decode, c03's
    南湖 came back as 能 after other files had been decoded."""
    first = transcribe_file(sample("c03"), model_dir(), "zh", digit_pass=False)
    transcribe_file(sample("c09"), model_dir(), "zh", digit_pass=False)
    again = transcribe_file(sample("c03"), model_dir(), "zh", digit_pass=False)
    assert again.transcript == first.transcript


def test_a_used_recognizer_gives_the_words_and_times_of_a_fresh_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Recognizers are kept between decodes; their word times must not count on from the
    audio they had before (c01 has a digit pass and a place pass: three recognizers)."""
    monkeypatch.setattr(recognizer, "_idle", {})
    fresh = transcribe_file(sample("c01"), model_dir(), "zh")
    assert recognizer._idle  # kept for the next decode
    transcribe_file(sample("c09"), model_dir(), "zh")
    used = transcribe_file(sample("c01"), model_dir(), "zh")
    assert used.transcript == fresh.transcript


def test_a_recognizer_that_failed_mid_decode_is_not_used_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A half-fed recognizer would run the next file on from the failed one's audio."""
    monkeypatch.setattr(recognizer, "_idle", {})
    expected = transcribe_file(sample("c03"), model_dir(), "zh", digit_pass=False)
    real = wave.Wave_read.readframes
    reads = 0

    def failing(self: wave.Wave_read, n: int) -> bytes:
        nonlocal reads
        reads += 1
        if reads == 5:
            raise OSError(5, "Input/output error")
        return real(self, n)

    with monkeypatch.context() as broken:
        broken.setattr(wave.Wave_read, "readframes", failing)
        with pytest.raises(TranscriptionError, match="cannot read"):
            transcribe_file(sample("c03"), model_dir(), "zh", digit_pass=False)
    again = transcribe_file(sample("c03"), model_dir(), "zh", digit_pass=False)
    assert again.transcript == expected.transcript


def test_the_place_pass_keeps_the_recognizers_other_readings_of_an_unsure_place() -> None:
    """c03 ends 在 南湖 和 朕: the stretch is decoded again for Vosk's n-best readings."""
    decoded = Transcript.from_json(transcribe_file(sample("c03"), model_dir(), "zh",
                                                   digit_pass=False).transcript)
    (segment,) = decoded.segments
    assert 1 < len(segment.alternatives) <= 10
    assert "在南湖镇" in segment.alternatives
    plain = Transcript.from_json(transcribe_file(sample("c03"), model_dir(), "zh",
                                                 digit_pass=False, place_pass=False).transcript)
    assert plain.segments[0].alternatives == () and plain.segments[0].words == segment.words


def test_the_file_is_streamed_in_chunks_not_read_whole(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """Reads never ask for more than ``chunk_frames`` frames at a time."""
    asked: list[int] = []
    real = wave.Wave_read.readframes

    def spy(self: wave.Wave_read, n: int) -> bytes:
        asked.append(n)
        return real(self, n)

    monkeypatch.setattr(wave.Wave_read, "readframes", spy)
    decoded = transcribe_file(sample("r01"), model_dir(), "zh", chunk_frames=1000,
                              digit_pass=False)
    assert set(asked) == {1000} and len(asked) == 35  # 33,400 frames: 34 reads + the empty
    assert "满意" in chars(Transcript.from_json(decoded.transcript), "unknown")


async def test_closing_the_pool_abandons_a_decode_in_progress_at_once(tmp_path: Path) -> None:
    """A stop must not wait for a long recording: the decode is abandoned (its job is not
    acknowledged, so it is done again later) and the pool closes in a moment."""
    names = ["c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10"]
    starts = [(name, 7.0 * n) for n, name in enumerate(names)]
    long_call = stereo_call(tmp_path / "long.wav", starts, starts, 7.0 * len(names))
    pool = DecoderPool(1, 4000)
    decoding = asyncio.create_task(pool.transcribe(long_call, model_dir(), "zh"))
    while not pool._executor or not pool._executor._processes:  # noqa: SLF001
        await asyncio.sleep(0.05)  # the process is being spawned: no event tells when
    await asyncio.sleep(1.0)  # into the decode (140 s of audio: about a minute of work)
    started = time.monotonic()
    await pool.close()
    assert time.monotonic() - started < 5
    with pytest.raises(TranscriptionError):
        await decoding


def _what_the_process_holds() -> tuple[list[str], int]:
    """Run inside a pool process: its loaded models and built place indexes."""
    from callcenter.speech import places

    return [path.name for path in recognizer._models], places._index.cache_info().currsize


async def test_a_decoding_process_loads_its_models_and_places_when_it_starts(
        tmp_path: Path) -> None:
    """The first job of a new process does not wait for the model and the place index; a
    model that cannot load does not break the process (the job reports it)."""
    pool = DecoderPool(1, 4000, models=[model_dir(), tmp_path / "missing"])
    try:
        executor = pool._pool()
        held = await asyncio.get_running_loop().run_in_executor(executor,
                                                                _what_the_process_holds)
        assert held == ([model_dir().name], 1)
        with pytest.raises(TranscriptionError, match="missing"):
            await pool.transcribe(sample("r01"), tmp_path / "missing", "zh")
        decoded = await pool.transcribe(sample("r01"), model_dir(), "zh")
        assert "满意" in chars(Transcript.from_json(decoded.transcript), "unknown")
    finally:
        await pool.close()
