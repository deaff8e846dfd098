"""Who is at the far end of a channel: callers, agents' softphones, outbound destinations.

Behaviours are plain data; the PBX asks them what to do (answer after how long, which keys to
press, when to hang up) and schedules it on the simulator's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Caller:
    """An inbound caller on the trunk.

    keys: digits pressed one by one whenever the IVR waits for input (after `key_delay` s).
    dtmf_script: (seconds after answer, digits) pressed at fixed times.
    patience: hang up if not connected to an agent this many seconds after joining a queue.
    talk_time: hang up this many seconds after being connected (None: let the agent end it).
    max_duration: hang up after this long in total, whatever happens.
    voice: WAV (8 kHz mono) in the speech-samples folder, or a path: what the caller says.
    """

    name: str = ""
    keys: str = ""
    key_delay: float = 1.0
    dtmf_script: list[tuple[float, str]] = field(default_factory=list)
    patience: float | None = None
    talk_time: float | None = 30.0
    max_duration: float | None = None
    voice: str | None = None


@dataclass
class Agent:
    """A softphone registered as an endpoint (PJSIP/1001) that queues and Dial ring.

    mode: answer (after `answer_after` s), never (rings until timeout), busy, congestion.
    talk_time: the agent hangs up after this long in a call (None: the caller ends it).
    hangup_after_answer: the agent hangs up this long after answering, connected or not (a
    hang-up during the queue's member announcement makes app_queue send AgentDump).
    hold_after / hold_for: the phone puts the caller on hold this long after being connected
    (a re-INVITE ``sendonly``: ``Hold`` on the phone's channel, ``MusicOnHoldStart`` on the
    caller's) and resumes after ``hold_for`` (``Unhold``, ``MusicOnHoldStop``), as Asterisk 22
    reports a SIP phone's hold (captures/hold).
    """

    name: str | None = None
    mode: Literal["answer", "never", "busy", "congestion"] = "answer"
    answer_after: float = 2.0
    talk_time: float | None = None
    hangup_after_answer: float | None = None
    voice: str | None = "a01.wav"
    hold_after: float | None = None
    hold_for: float = 5.0


@dataclass
class Destination:
    """The far end of an outbound call (Originate to PJSIP/trunk/<number> or Local/...).

    mode: answer, busy, noanswer (rings until the timeout), congestion, hangup (rings, then
    the far end hangs up before answering).
    keys: pressed after answering, one every `key_delay` s (e.g. a survey answer).
    """

    mode: Literal["answer", "busy", "noanswer", "congestion", "hangup"] = "answer"
    answer_after: float = 2.0
    keys: str = ""
    key_delay: float = 1.0
    first_key_after: float = 2.0
    talk_time: float | None = 20.0
    voice: str | None = None
