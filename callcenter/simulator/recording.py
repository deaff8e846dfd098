"""MixMonitor: which voices are heard when, and the WAV written when recording stops.

A recording on channel X hears X's far end (the `caller` leg: what is read from X) and the
far end of whatever X is bridged to (the `agent` leg: what is written to X). Voices are the
actors' WAV files (8 kHz mono). The file is written off the event loop, only when recording.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.simulator.channels import Channel
    from callcenter.simulator.pbx import Pbx

log = logging.getLogger(__name__)


@dataclass
class Recording:
    chan: Channel
    path: Path
    asterisk_path: str
    stereo: bool
    started: float
    voices: list[tuple[str, float, str]] = field(default_factory=list)  # (wav, start_s, leg)
    done: asyncio.Future[Path] | None = None


class Recorder:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        # one writer thread: files are written one after the other, so a burst of hang-ups
        # (a whole shift of calls ending together) never has several threads fighting the
        # event loop for the GIL; measured: lag spikes of ~200 ms with the default pool
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixmonitor")
        self.pending: set[asyncio.Future[Any]] = set()
        self.finished: dict[str, Path] = {}  # uniqueid → file written
        self.waiters: dict[str, asyncio.Future[Path]] = {}
        self.errors: list[str] = []

    def map_path(self, filename: str) -> Path:
        """/var/spool/asterisk/monitor/<x> → recordings_dir/<x>; relative names go there too."""
        monitor = self.pbx.config.monitor_dir.rstrip("/")
        rec = self.pbx.config.recordings_dir
        if filename.startswith(monitor + "/"):
            return rec / filename[len(monitor) + 1 :]
        if not filename.startswith("/"):
            return rec / filename
        return rec / Path(filename).name

    def start(self, chan: Channel, filename: str, options: str) -> Recording:
        stereo = "D" in options
        rec = Recording(chan, self.map_path(filename), filename, stereo, self.pbx.clock.now())
        rec.done = asyncio.get_running_loop().create_future()
        chan.mixmonitors.append(rec)
        if chan.bridge is not None:
            self.bridged(chan, chan.bridge.peer_of(chan), rec.started)
        else:
            from callcenter.simulator.actors import Destination

            own = self.voice_path(getattr(chan.actor, "voice", None))
            if own and isinstance(chan.actor, Destination):
                rec.voices.append((own, 1.0, "caller"))
        return rec

    def voice_path(self, voice: str | None) -> str | None:
        if not voice:
            return None
        p = Path(voice)
        if not p.is_absolute():
            p = self.pbx.config.speech_samples_dir / voice
        return str(p)

    def bridged(self, chan: Channel, peer: Channel | None, now: float) -> None:
        """X is now talking to peer: agent greets first, then the caller speaks."""
        if not chan.mixmonitors:
            return
        own = self.voice_path(getattr(chan.actor, "voice", None))
        other = self.voice_path(getattr(peer.actor, "voice", None)) if peer is not None else None
        if other is None and peer is not None and peer.local_peer is not None:
            other = self.voice_path(getattr(peer.local_peer.actor, "voice", None))
        for rec in chan.mixmonitors:
            t = now - rec.started + 0.5
            if other:
                rec.voices.append((other, t, "agent"))
                t += self._length(other) + 0.5
            if own:
                rec.voices.append((own, t, "caller"))

    def answered(self, chan: Channel, now: float) -> None:
        """An outbound destination answered a recorded channel: it speaks after 1 s."""
        own = self.voice_path(getattr(chan.actor, "voice", None))
        for rec in chan.mixmonitors:
            if own:
                rec.voices.append((own, now - rec.started + 1.0, "caller"))

    def _length(self, path: str) -> float:
        cache = self.pbx.__dict__.setdefault("_voice_lengths", {})
        if path not in cache:
            try:
                from callcenter.simulator.wav import duration_of

                cache[path] = duration_of(path)
            except Exception:  # noqa: BLE001 - a missing voice must not stop the call
                cache[path] = 0.0
        return cache[path]

    def stop(self, chan: Channel, explicit: bool) -> bool:
        if not chan.mixmonitors:
            return False
        recs, chan.mixmonitors = chan.mixmonitors, []
        if explicit:
            chan.emit("MixMonitorStop", ev.CALL)
        for rec in recs:
            self._write(rec)
        return True

    def channel_gone(self, chan: Channel) -> None:
        if chan.mixmonitors:
            self.stop(chan, explicit=False)

    def _write(self, rec: Recording) -> None:
        duration = max(0.0, self.pbx.clock.now() - rec.started)
        task = asyncio.get_running_loop().run_in_executor(
            self.executor, _write_file, rec.path, list(rec.voices), duration, rec.stereo
        )
        self.pending.add(task)
        uid = rec.chan.uniqueid

        def done(t: asyncio.Future[Any]) -> None:
            self.pending.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                log.error("MixMonitor write failed path=%s error=%r", rec.path, exc)
                self.errors.append(f"{rec.path}: {exc}")
                if rec.done is not None and not rec.done.done():
                    rec.done.set_exception(exc)
                return
            self.finished[uid] = rec.path
            if rec.done is not None and not rec.done.done():
                rec.done.set_result(rec.path)
            waiter = self.waiters.pop(uid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(rec.path)

        task.add_done_callback(done)

    async def flush(self) -> None:
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    def close(self) -> None:
        """Stop the writer thread once every file is written (after flush())."""
        self.executor.shutdown(wait=False)


def _write_file(
    path: Path, voices: list[tuple[str, float, str]], duration: float, stereo: bool
) -> None:
    from callcenter.simulator.wav import Segment, read_pcm, write_mixmonitor

    cache: dict[str, Any] = {}
    segments = []
    for wav, start, leg in voices:
        if start >= duration:
            continue
        if wav not in cache:
            cache[wav] = read_pcm(wav)
        segments.append(Segment(cache[wav], start, leg))  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mixmonitor(path, segments, duration, stereo)
