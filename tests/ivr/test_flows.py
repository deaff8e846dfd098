"""Flow files: the shipped ones load; each kind of broken file stops the start with an
error naming the file and the node."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callcenter.ivr.app import load_flows, prompts_of
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.flow import FlowError, load_flow
from callcenter.ivr.prompts import PromptCatalog
from tests.ivr.rig import FLOWS

GOOD = """
start = "welcome"
languages = ["zh", "en"]
[nodes.welcome]
type = "play"
prompt = "hotline-welcome"
next = "main"
[nodes.main]
type = "menu"
prompt = "main-menu"
keys = { "1" = "agent" }
timeout = 5
retries = 1
on_invalid = "agent"
on_timeout = "agent"
[nodes.agent]
type = "queue"
"""


def write(tmp_path: Path, text: str) -> Path:
    shutil.copy(FLOWS / "prompts.toml", tmp_path / "prompts.toml")
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str):
    return load_flow(write(tmp_path, text), PromptCatalog(tmp_path).knows)


def test_the_shipped_flows_load_and_name_their_prompts() -> None:
    config = IvrConfig(flows_dir=FLOWS)
    flows = load_flows(config, PromptCatalog(FLOWS))
    assert sorted(flows) == ["hotline", "menu"]
    assert ("hotline-welcome", "zh") in prompts_of(flows)
    assert ("progress-ask-pin", "en") in prompts_of(flows)  # the progress node's own prompts


def test_a_good_flow_loads(tmp_path: Path) -> None:
    flow = load(tmp_path, GOOD)
    assert flow.name == "broken" and flow.nodes["main"].keys == {"1": "agent"}


LOOP = ('type = "queue"', 'type = "queue"\n[nodes.loop1]\ntype = "play"\nprompt = "goodbye"'
        '\nnext = "loop2"\n[nodes.loop2]\ntype = "play"\nprompt = "goodbye"\nnext = "loop1"')


@pytest.mark.parametrize(("changes", "message"), [
    ([('prompt = "main-menu"', 'prompt = "no-such-prompt"')],
     "node 'main': prompt 'no-such-prompt' is unknown in 'zh'"),
    ([('on_timeout = "agent"', 'on_timeout = "nowhere"')],
     "node 'main': on_timeout goes to 'nowhere', which is not a node"),
    ([('type = "queue"', 'type = "queue"\n[nodes.island]\ntype = "hangup"')],
     "node 'island': unreachable from start 'welcome'"),
    ([('keys = { "1" = "agent" }', 'keys = { "1" = "agent", "2" = "loop1" }'), LOOP],
     "node 'loop1': a loop without exit"),
    ([("timeout = 5\n", "")], "node 'main': a menu node needs 'timeout'"),
    ([('keys = { "1" = "agent" }', 'keys = { "12" = "agent" }')],
     "node 'main': key '12' is not one of 0-9 * #"),
    ([('type = "queue"', 'type = "queue"\nqueue = "sales"')],
     "node 'agent': queue 'sales' does not start with 'hotline'"),
    ([('retries = 1', 'retries = 1\ncolour = "red"')],
     "node 'main': nodes.main.colour: Extra inputs are not permitted"),
    ([('timeout = 5', 'timeout = "soon"')], "node 'main': nodes.main.timeout"),
    ([('start = "welcome"', 'start = "hello"')], "start 'hello' is not a node"),
    ([('type = "play"', 'type = "play" =')], "cannot read the flow"),
])
def test_a_broken_flow_names_the_file_and_the_node(
        tmp_path: Path, changes: list[tuple[str, str]], message: str) -> None:
    text = GOOD
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    with pytest.raises(FlowError) as failure:
        load(tmp_path, text)
    assert str(failure.value).startswith(str(tmp_path / "broken.toml"))
    assert message in str(failure.value)


def test_a_recording_alone_makes_a_prompt_known(tmp_path: Path) -> None:
    text = GOOD.replace('prompt = "main-menu"', 'prompt = "recorded-only"')
    for language in ("zh", "en"):
        (tmp_path / "prompts" / language).mkdir(parents=True)
        (tmp_path / "prompts" / language / "recorded-only.wav").write_bytes(b"RIFF")
    assert load(tmp_path, text).nodes["main"].prompt == "recorded-only"


def test_the_configured_flow_must_exist(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    with pytest.raises(FlowError, match="no flow 'hotline'"):
        load_flows(IvrConfig(flows_dir=tmp_path), PromptCatalog(tmp_path))
