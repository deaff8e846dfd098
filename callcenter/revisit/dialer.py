"""The dialer: keeps each campaign's lines busy inside its window, at its pace.

One loop per process where the telephony door is. Each round claims as many due revisits
as the campaign has free lines (the claim counts lines across every dialer and stores each
attempt in the same transaction) and starts one task per call: its pace slot, then
``Originate`` (async, with the attempt's ``ChannelId`` and variables naming the revisit)
into the ``[revisit]`` context; the ``OriginateResponse`` outcome drives the retry. An
answered call holds its line until the channel hangs up. A line is refilled the moment its
call is heard to end (the hang-up or an unanswered ``OriginateResponse``): the next claim
frees it in its own transaction, before the call's result is written. Housekeeping (new
revisits, lease renewal, reconciling the claims of dialers that stopped against
``CoreShowChannels``) runs beside the claims, so it never holds a free line up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from callcenter.revisit.config import CampaignSettings, RevisitConfig
from callcenter.revisit.service import Dial, RevisitService, in_window

log = logging.getLogger(__name__)


class Pacer:
    """At most ``rate`` call starts per second (spaced evenly, no bursts)."""

    def __init__(self) -> None:
        self._next = 0.0

    async def wait(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next)
        self._next = start + 1.0 / rate
        if start > now:
            await asyncio.sleep(start - now)


class Dialer:
    def __init__(self, service: RevisitService, commands: Any, config: RevisitConfig) -> None:
        self.service = service
        self.commands = commands
        self.config = config
        self.pacer = Pacer()
        self.calls: dict[int, tuple[int, asyncio.Task[None]]] = {}
        """revisit id -> (claim token, its call task)."""
        self.ended: dict[str, asyncio.Event] = {}
        """channel id -> set when the answered call is over (survey end or hang-up)."""
        self.gone: set[str] = set()
        """Channels of ours heard to end whose line the database still counts busy."""
        self.wake = asyncio.Event()
        self.dials = 0
        self._housekept: float | None = None
        self._campaigns: list[Any] | None = None

    # --- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("revisit.dialer_started")
        housekeeper = asyncio.create_task(self._housekeeper(stop), name="revisit-housekeeping")
        try:
            while not stop.is_set():
                self.wake.clear()  # a line freed during the fill wakes the next one
                try:
                    await self.fill()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("revisit.dialer_round_failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.poll_seconds):
                        await _first(stop.wait(), self.wake.wait())
        finally:
            housekeeper.cancel()
            await asyncio.gather(housekeeper, return_exceptions=True)
            await self.close()

    async def round(self) -> None:
        """One round by hand: housekeeping if ``housekeeping_seconds`` have passed, then
        the claims (``run`` does the housekeeping in a task of its own)."""
        now = asyncio.get_running_loop().time()
        if self._housekept is None or now - self._housekept >= self.config.housekeeping_seconds:
            self._housekept = now
            await self.housekeep()
        await self.fill()

    async def _housekeeper(self, stop: asyncio.Event) -> None:
        every = self.config.housekeeping_seconds or self.config.poll_seconds
        while not stop.is_set():
            try:
                await self.housekeep()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("revisit.housekeeping_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await stop.wait()

    async def housekeep(self) -> None:
        """New revisits, lease renewal, reconciliation, and the campaigns read again (a
        pause is also checked by every claim)."""
        await self.service.schedule_replied()
        await self.renew()
        await self.recover()
        self._campaigns = await self.service.campaigns()
        self.wake.set()  # new revisits or freed lines: claim now

    async def fill(self) -> None:
        """Claim every free line of each campaign inside its window; each call waits for
        its pace slot in its own task, so the next free line is claimed meanwhile."""
        if self._campaigns is None:
            self._campaigns = await self.service.campaigns()
        for campaign in self._campaigns:
            if campaign.paused:
                continue
            settings = CampaignSettings(**campaign.settings)
            if not in_window(settings, self.service.calendar, self.service.now()):
                continue
            gone = set(self.gone)
            dials = await self.service.claim(campaign.id, settings.max_lines, ended=gone)
            self.gone -= gone
            for dial in dials:
                self._start(dial, settings.calls_per_second)

    def _start(self, dial: Dial, rate: float) -> None:
        task = asyncio.create_task(self.call(dial, rate), name=f"revisit-{dial.revisit_id}")
        self.calls[dial.revisit_id] = (dial.token, task)
        task.add_done_callback(lambda _: self._done(dial.revisit_id))

    def _done(self, revisit_id: int) -> None:
        self.calls.pop(revisit_id, None)
        self.wake.set()  # a line may be free (a claim that was not dialed)

    def _line_free(self, channel_id: str) -> None:
        """The call on ``channel_id`` is over: the next claim frees its line at once."""
        self.gone.add(channel_id)
        self.wake.set()

    async def renew(self) -> None:
        held = [(rid, token) for rid, (token, _) in self.calls.items()]
        if held:
            await self.service.renew(held)

    async def recover(self) -> None:
        """Claims whose dialer stopped renewing: compare with what Asterisk has."""
        orphans = [c for c in await self.service.orphan_lines() if c not in self.ended]
        expired = await self.service.expired()
        if not orphans and not expired:
            return
        try:
            rows = await self.commands.core_show_channels()
        except Exception as exc:  # noqa: BLE001 - without Asterisk's view, wait
            log.warning("revisit.reconcile_deferred error=%r", exc)
            return
        live = {str(row.get("Uniqueid", "")) for row in rows}
        await self.service.free_lines(c for c in orphans if c not in live)
        await self.service.reconcile(expired, live)

    # --- one call -------------------------------------------------------------------------

    async def call(self, dial: Dial, rate: float) -> None:
        self.ended[dial.channel_id] = ended = asyncio.Event()
        try:
            await self.pacer.wait(rate)
            outcome, reason = await self._originate(dial)
            if outcome != "answered":
                self._line_free(dial.channel_id)  # no channel is left
            state = await self.service.dial_outcome(dial.channel_id, dial.token, outcome,
                                                    reason)
            if outcome == "answered" and state == "answered":
                await self._until_over(dial.channel_id, ended)
                await self.service.call_ended(dial.channel_id, hung_up=True)
        finally:
            self.ended.pop(dial.channel_id, None)

    async def _until_over(self, channel_id: str, ended: asyncio.Event) -> None:
        """The hang-up listener ends the call; if its event was lost, the call is over
        after ``max_call_seconds`` unless Asterisk still has the channel."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.max_call_seconds):
                    await ended.wait()
                    return
            rows = await self.commands.core_show_channels()
            if channel_id not in {str(row.get("Uniqueid", "")) for row in rows}:
                return

    async def _originate(self, dial: Dial) -> tuple[str, int | None]:
        self.dials += 1
        log.info("revisit.dial revisit=%s attempt=%s channel_id=%s", dial.revisit_id,
                 dial.attempt, dial.channel_id)
        try:
            result = await self.commands.originate(
                self.config.trunk_channel.format(number=dial.number),
                context=self.config.context, exten="s", priority=1,
                caller_id=dial.settings.caller_id, channel_id=dial.channel_id,
                timeout_ms=dial.settings.ring_timeout_ms,
                variables={"REVISIT_ID": str(dial.revisit_id),
                           "REVISIT_ATTEMPT": str(dial.attempt),
                           "CHANNEL(language)": dial.settings.language})
        except Exception as exc:  # noqa: BLE001 - the channel may live: reconcile decides
            log.warning("revisit.originate_unknown revisit=%s error=%r", dial.revisit_id, exc)
            raise
        return result.outcome, result.reason

    # --- events ---------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """Telephony listener: a channel of ours hung up (set even before the answer is
        known, so the call's task never waits for a hang-up that already happened)."""
        if getattr(event, "topic", "") == "channel.hungup":
            channel_id = getattr(event, "uniqueid", "")
            ended = self.ended.get(channel_id)
            if ended is not None:
                ended.set()
                self._line_free(channel_id)

    async def close(self) -> None:
        tasks = [task for _, task in self.calls.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
