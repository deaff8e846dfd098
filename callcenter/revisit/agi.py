"""The FastAGI ``revisit`` script: the keypad survey the ``[revisit]`` context runs once the
citizen answers.

Greets, names the hotline and the order's topic (never names, addresses or numbers), asks
1 satisfied / 2 basically satisfied / 3 unsatisfied, or 1-5 stars on a ``stars`` campaign
(0 declines on both), whether the problem was solved, offers a spoken comment after a tone
(``RECORD FILE``) and thanks. Each answer is stored the moment it is keyed; silence or a
wrong key is asked again ``key_retries`` times. Whatever happens, the result is written
(``call_ended``) before the script hangs up.
"""

from __future__ import annotations

import contextlib
import logging

from callcenter.feature import AgiScript, Runtime
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary, playable
from callcenter.revisit.config import RevisitConfig
from callcenter.revisit.service import RevisitService
from callcenter.revisit.workers import build_service
from callcenter.telephony.agi import AgiSession
from callcenter.telephony.errors import AgiError, AgiTimeout, ChannelHungUp

log = logging.getLogger(__name__)

PROMPTS = ("revisit-greeting", "revisit-ask-score", "revisit-ask-stars", "revisit-ask-solved",
           "revisit-ask-comment", "revisit-invalid", "revisit-thanks", "revisit-declined")
ASK = {"three": ("revisit-ask-score", "0123"), "stars": ("revisit-ask-stars", "012345")}
"""The question and its valid keys, by the campaign's scale."""
SUBJECT = {"zh": "您反映的是{topic}方面的问题。", "en": "Your report was about {topic}."}


async def scripts(runtime: Runtime) -> dict[str, AgiScript]:
    service = build_service(runtime)
    config: RevisitConfig = runtime.settings.revisit
    library = PromptLibrary(PromptCatalog(config.prompts_dir), runtime.settings.ivr)
    wanted = [(name, config.campaign.language) for name in PROMPTS]
    await library.in_worker(library.ensure, wanted, runtime.settings.ivr.build_missing_prompts)

    async def release() -> None:
        library.close()

    runtime.on_stop(release)
    return {"revisit": Survey(service, library, config).run}


class Survey:
    def __init__(self, service: RevisitService, library: PromptLibrary,
                 config: RevisitConfig, language: str | None = None) -> None:
        self.service = service
        self.library = library
        self.config = config
        self.language = language or config.campaign.language

    async def run(self, session: AgiSession) -> None:
        channel_id = session.uniqueid
        found = await self.service.survey_subject(channel_id)
        if found is None:
            log.warning("revisit.survey_unknown_channel channel=%s", session.channel)
            with contextlib.suppress(AgiError):
                await session.hangup()
            return
        try:
            await self._ask_all(session, channel_id, found.topic, found.scale)
        except ChannelHungUp:
            log.info("revisit.citizen_hung_up channel_id=%s", channel_id)
        except AgiTimeout:
            log.warning("revisit.agi_timeout channel_id=%s", channel_id)
        finally:
            await self.service.call_ended(channel_id)  # durable before the line is dropped
        with contextlib.suppress(AgiError):
            await session.hangup()

    async def _ask_all(self, session: AgiSession, channel_id: str, topic: str, scale: str
                       ) -> None:
        await self._play(session, "revisit-greeting")
        if topic:
            text = SUBJECT.get(self.language, SUBJECT["zh"]).format(topic=topic)
            await self._stream(session, await self.library.sentence(text, self.language))
        prompt, valid = ASK[scale]
        score = await self._key(session, prompt, valid)
        if score is None:
            return
        if scale == "stars" and score != "0":
            await self.service.store_answer(channel_id, stars=int(score))
            await session.set_variable("REVISIT_STARS", score)
        else:
            await self.service.store_answer(channel_id, score=score)
        await session.set_variable("REVISIT_SCORE", score)
        if score == "0":
            await self._play(session, "revisit-declined")
            return
        solved = await self._key(session, "revisit-ask-solved", "12")
        if solved is not None:
            await self.service.store_answer(channel_id, solved=solved == "1")
        await self._play(session, "revisit-ask-comment")
        name = f"revisit-comment-{channel_id}"
        path = f"{self.config.comment_dir.rstrip('/')}/{name}"
        limit = self.config.comment_max_seconds * 1000
        try:
            await session.command(f'RECORD FILE {path} wav "#" {limit} 0 beep')
        finally:  # a citizen who hangs up after speaking still left the comment
            await self.service.store_answer(channel_id, comment_file=f"{name}.wav")
        await self._play(session, "revisit-thanks")

    async def _key(self, session: AgiSession, prompt: str, valid: str) -> str | None:
        for attempt in range(self.config.key_retries + 1):
            digit = await session.get_data(playable(prompt, self.language),
                                           self.config.key_timeout_ms, 1)
            if digit and digit in valid:
                return digit
            log.info("revisit.key_invalid prompt=%s key=%s try=%d", prompt, digit, attempt)
            if digit:
                await self._play(session, "revisit-invalid")
        return None

    async def _play(self, session: AgiSession, prompt: str) -> None:
        await self._stream(session, playable(prompt, self.language))

    @staticmethod
    async def _stream(session: AgiSession, name: str) -> None:
        try:
            await session.stream_file(name)
        except AgiError as exc:
            if isinstance(exc, (ChannelHungUp, AgiTimeout)):
                raise
            log.error("revisit.prompt_failed prompt=%s error=%s", name, exc)
