"""Runs one call through a flow over FastAGI: plays prompts, collects digits, keeps the
channel variables the agent's screen-pop and the call log read, and hands the call back to
the dialplan with the queue to use (or the outcome that ends the call).

Channel variables: ``IVR_NODE`` (where the caller is; set on entering each node, so a
hang-up shows where), and when the IVR ends (hand-over, hang-up by either side; Asterisk
lets variables be set on a hung-up channel) ``IVR_PATH`` (nodes and keys) and ``IVR_PROMPTS``
(what really played; a prompt Asterisk could not play is marked ``!``); ``IVR_LANGUAGE``,
``IVR_QUEUE``/``IVR_TOPIC`` (the hand-over; the dialplan queues
``hotline${IVR_QUEUE_SUFFIX}``), ``IVR_OUTCOME`` (``queue``, or ``hangup``: the IVR hung up),
``IVR_TICKET`` and ``IVR_VERIFIED`` (a progress lookup or a message's draft).

A hang-up ends the run at once; a command that times out ends it without another command
on the socket (the dialplan then queues the caller to the hotline);
invalid keys and silence follow the flow, and a flow that still fails ends at an agent.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from callcenter.ivr.flow import DIALPLAN_QUEUE, Flow, Node
from callcenter.ivr.prompts import playable
from callcenter.ivr.spoken import progress_sentence
from callcenter.knowledge.models import KnowledgeArticle
from callcenter.telephony.agi import AgiSession
from callcenter.telephony.errors import AgiError, AgiTimeout, ChannelHungUp

if TYPE_CHECKING:
    from callcenter.ivr.app import IvrApp

log = logging.getLogger(__name__)

MAX_STEPS = 200
"""A guard against a flow the checks let through that still loops (it cannot, in theory)."""


@dataclass
class CallState:
    language: str
    path: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    node: str = ""


class FlowRunner:
    def __init__(self, app: IvrApp, flow: Flow, session: AgiSession) -> None:
        self.app = app
        self.flow = flow
        self.session = session
        self.state = CallState(language=flow.languages[0])

    async def run(self) -> None:
        session = self.session
        try:
            await session.answer()
            name: str | None = self.flow.start
            for _ in range(MAX_STEPS):
                if name is None:
                    return
                name = await self._visit(name)
            log.error("ivr.flow_runaway flow=%s channel=%s", self.flow.name, session.channel)
            await self._hand_over(self.flow.fallback_queue, None)
        except ChannelHungUp:
            log.info("ivr.caller_hung_up node=%s path=%s channel=%s", self.state.node,
                     ">".join(self.state.path), session.channel)
            with contextlib.suppress(AgiError):  # variables may still be set on a dead channel
                await self._record()
        except AgiTimeout:
            log.warning("ivr.agi_timeout node=%s channel=%s", self.state.node, session.channel)

    async def _visit(self, name: str) -> str | None:
        if self.session.hung_up:  # Asterisk said so: no node starts on a dead channel
            raise ChannelHungUp("caller hung up")
        node = self.flow.nodes[name]
        self.state.node = name
        self.state.path.append(name)
        await self._set("IVR_NODE", name)
        handler = getattr(self, f"_node_{node.type}")
        next_node: str | None = await handler(node)
        return next_node

    # -- node kinds ---------------------------------------------------------------------------
    async def _node_play(self, node: Node) -> str | None:
        digit = await self._play(node.prompt, "".join(node.keys or {}))
        if digit and node.keys and digit in node.keys:
            self._key(digit)
            return node.keys[digit]
        return node.next

    async def _node_menu(self, node: Node) -> str | None:
        keys = node.keys or {}
        timed_out = True
        for _attempt in range((node.retries or 0) + 1):
            digits = await self._ask(node.prompt, node.timeout, 1)
            if digits and digits in keys:
                self._key(digits)
                return keys[digits]
            timed_out = not digits
            if digits:
                self._key(digits)
                if node.invalid_prompt:
                    await self._play(node.invalid_prompt)
        return node.on_timeout if timed_out else node.on_invalid

    async def _node_language(self, node: Node) -> str | None:
        assert node.language is not None
        self.state.language = node.language
        await self._set("IVR_LANGUAGE", node.language)
        await self._set("CHANNEL(language)", node.language)
        return node.next

    async def _node_branch(self, node: Node) -> str | None:
        service, now = self.app.service, self.app.clock.now()
        switches = await service.announcements()
        is_open = service.is_open(now)
        state = {**switches, "open": is_open, "closed": not is_open,
                 "holiday": switches["holiday"] or service.is_public_holiday(now)}
        for rule in node.when or []:
            if state.get(rule.condition):
                return rule.goto
        return node.next

    async def _node_queue(self, node: Node) -> str | None:
        if node.prompt:
            await self._play(node.prompt)
        await self._hand_over(self.flow.queue_for(node, self.state.language), node.topic)
        return None

    async def _node_hangup(self, node: Node) -> str | None:
        if node.prompt:
            await self._play(node.prompt)
        await self._set("IVR_OUTCOME", "hangup")
        await self._record()
        await self.session.hangup()  # the dialplan must not queue the caller
        return None

    async def _node_answer(self, node: Node) -> str | None:
        body = await self._article(node.article or "") if self.state.language == "zh" else None
        if body:
            name = await self.app.library.sentence(body, self.state.language)
            await self._play_file(name)
        else:
            await self._play(node.prompt)
        return node.next

    async def _node_message(self, node: Node) -> str | None:
        await self._play(node.prompt)
        session = self.session
        base = f"ivr-message-{session.uniqueid or 'unknown'}"
        path = f"{self.app.config.message_dir.rstrip('/')}/{base}"
        limit_ms = self.app.config.message_max_seconds * 1000
        hung_up = False
        try:
            await session.command(f'RECORD FILE {path} wav "#" {limit_ms} BEEP')
        except ChannelHungUp:
            hung_up = True  # callers hang up when they have said it: the file is kept
        ticket = await self.app.service.leave_message(
            session.caller_id, self._linkedid(), f"{base}.wav")
        await self._set("IVR_TICKET", ticket.number)
        if hung_up:
            raise ChannelHungUp("caller hung up after the message")
        return node.next

    async def _node_progress(self, node: Node) -> str | None:
        service = self.app.service
        timed_out = True
        for _attempt in range((node.retries or 0) + 1):
            keyed = await self._ask(node.prompt, node.timeout, node.digits)
            if not keyed:
                timed_out = True
                continue
            timed_out = False
            result = await service.check_caller(keyed, self.session.caller_id,
                                                self._linkedid())
            if result.outcome == "needs_pin":
                pin = await self._ask("progress-ask-pin", node.timeout, 6)
                result = await service.check_pin(keyed, pin or "", self.session.caller_id,
                                                 self._linkedid())
            await self._set("IVR_VERIFIED", result.outcome)
            if result.outcome == "refused":
                await self._play("progress-refused")
                return node.on_invalid
            if result.progress is not None:
                progress = result.progress
                await self._set("IVR_TICKET", progress.number)
                text = progress_sentence(self.state.language, progress.number,
                                         progress.status, progress.due)
                await self._play_file(await self.app.library.sentence(text,
                                                                      self.state.language))
                return node.next
            await self._play("progress-not-found")
        return node.on_timeout if timed_out else node.on_invalid

    # -- commands -------------------------------------------------------------------------------
    async def _play(self, prompt: str | None, escape: str = "") -> str | None:
        if not prompt:
            return None
        return await self._play_file(playable(prompt, self.state.language), escape)

    async def _play_file(self, name: str, escape: str = "") -> str | None:
        try:
            digit = await self.session.stream_file(name, escape)
        except (ChannelHungUp, AgiTimeout):
            self.state.prompts.append(name)
            raise
        except AgiError as exc:  # a prompt Asterisk cannot open: say so, go on
            log.error("ivr.prompt_failed prompt=%s channel=%s error=%s", name,
                      self.session.channel, exc)
            self.state.prompts.append(f"{name}!")
            return None
        self.state.prompts.append(name)
        return digit

    async def _ask(self, prompt: str | None, timeout: float | None, digits: int) -> str | None:
        assert prompt is not None
        name = playable(prompt, self.state.language)
        timeout_ms = int((timeout or 5) * 1000)
        self.state.prompts.append(name)
        return await self.session.get_data(name, timeout_ms, digits)

    async def _set(self, name: str, value: str) -> None:
        await self.session.set_variable(name, value)

    async def _record(self) -> None:
        """The account of the call for the call log and the screen-pop: the path taken and
        what really played (set once at the end; ``IVR_NODE`` follows every step)."""
        await self._set("IVR_PATH", ">".join(self.state.path))
        await self._set("IVR_PROMPTS", ",".join(self.state.prompts)[-1000:])

    async def _hand_over(self, queue: str, topic: str | None) -> None:
        await self._set("IVR_QUEUE", queue)
        suffix = queue[len(DIALPLAN_QUEUE):]
        if suffix:
            await self._set("IVR_QUEUE_SUFFIX", suffix)
        if topic:
            await self._set("IVR_TOPIC", topic)
        await self._set("IVR_OUTCOME", "queue")
        await self._record()

    def _key(self, digits: str) -> None:
        self.state.path[-1] = f"{self.state.path[-1]}:{digits}"

    def _linkedid(self) -> str:
        return self.session.headers.get("agi_linkedid") or self.session.uniqueid

    async def _article(self, title: str) -> str | None:
        async with self.app.service.sessionmaker() as session:
            return await session.scalar(
                select(KnowledgeArticle.body).where(KnowledgeArticle.title == title,
                                                    KnowledgeArticle.active.is_(True))
                .limit(1))
