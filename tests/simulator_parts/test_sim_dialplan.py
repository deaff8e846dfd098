"""extensions.conf model: the real capture dialplan, Asterisk's ordering and substitution."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.simulator.dialplan import (
    DialplanError,
    evaluate_expression,
    extension_matches,
    load_dialplan,
    split_app_args,
    substitute,
)


@pytest.fixture
def capture_plan(captures_dir: Path):
    return load_dialplan(captures_dir / "dialplan" / "extensions.conf")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extensions.conf"
    path.write_text(text)
    return path


def test_capture_dialplan_contexts(capture_plan) -> None:
    assert set(capture_plan.contexts) == {
        "ivr-test",
        "queue-test",
        "agi-test",
        "agents",
        "agents-noanswer",
        "caller-sim",
        "from-softphone",
    }
    assert capture_plan.general["static"] == "yes"
    assert capture_plan.globals == {}


def test_capture_dialplan_steps(capture_plan) -> None:
    steps = [capture_plan.step("queue-test", "rec", p) for p in range(1, 8)]
    assert [(s.app, s.data) for s in steps] == [
        ("NoOp", "queue-test-rec ${UNIQUEID}"),
        ("Answer", ""),
        ("Set", "RECFILE=/var/spool/asterisk/monitor/${UNIQUEID}.wav"),
        ("MixMonitor", "${RECFILE}"),
        ("Queue", "support,,,,60"),
        ("NoOp", "QUEUESTATUS=${QUEUESTATUS}"),
        ("Hangup", ""),
    ]
    assert capture_plan.step("queue-test", "rec", 8) is None
    agi = capture_plan.step("agi-test", "s", 2)
    assert (agi.app, agi.data, agi.priority) == ("AGI", "agi://127.0.0.1:4573/test", 2)
    assert split_app_args(capture_plan.step("queue-test", "s", 3).data) == [
        "support",
        "",
        "",
        "",
        "60",
    ]


def test_capture_dialplan_patterns(capture_plan) -> None:
    agent = capture_plan.step("agents", "100", 3)
    assert (agent.app, agent.exten) == ("Playback", "_X.")
    assert capture_plan.match("agents", "101")
    assert not capture_plan.match("agents", "1")  # '.' needs one more character
    assert not capture_plan.match("agents", "s")
    assert capture_plan.step("from-softphone", "6001", 1).exten == "_600[12]"
    assert capture_plan.step("from-softphone", "6001", 2).app == "Hangup"
    assert not capture_plan.match("from-softphone", "6003")
    assert capture_plan.step("from-softphone", "600", 1).data == "ivr-test,s,1"
    assert capture_plan.step("from-softphone", "600", 2) is None
    assert not capture_plan.match("no-such-context", "s")


def test_pattern_ordering_most_specific_first(tmp_path: Path) -> None:
    plan = load_dialplan(
        write(
            tmp_path,
            """
[in]
exten => _!,1,NoOp(bang)
exten => _X.,1,NoOp(any)
exten => _NXX,1,NoOp(nxx)
exten => _6XX,1,NoOp(6xx)
exten => 600,1,NoOp(exact)
exten => _60[0-5],1,NoOp(range)
exten => _XXXX,1,NoOp(four)
""",
        )
    )
    names = [e.name for e in plan.contexts["in"].extensions]
    assert names == ["600", "_60[0-5]", "_6XX", "_NXX", "_XXXX", "_X.", "_!"]
    assert plan.step("in", "600", 1).data == "exact"
    assert plan.step("in", "601", 1).data == "range"
    assert plan.step("in", "609", 1).data == "6xx"
    assert plan.step("in", "234", 1).data == "nxx"
    assert plan.step("in", "1234", 1).data == "four"
    assert plan.step("in", "12345", 1).data == "any"
    assert plan.step("in", "", 1).data == "bang"
    assert plan.step("in", "*", 1).data == "bang"


def test_first_match_without_priority_falls_through(tmp_path: Path) -> None:
    """pbx_find_extension keeps walking when the best match lacks the priority."""
    plan = load_dialplan(
        write(
            tmp_path,
            """
[in]
exten => 12345,1,NoOp(hotline)
exten => _X.,1,NoOp(generic)
 same => n,Hangup()
""",
        )
    )
    assert plan.step("in", "12345", 1).data == "hotline"
    assert plan.step("in", "12345", 2).app == "Hangup"


def test_priorities_labels_includes_globals(tmp_path: Path) -> None:
    plan = load_dialplan(
        write(
            tmp_path,
            """
[general]
static=yes
[globals]
HOTLINE=12345
QUEUE=${HOTLINE}-q
; comment line
[main]
include => common
exten => ${HOTLINE},1,Answer()   ; trailing comment
 same => n(menu),Background(welcome)
 same => n,WaitExten(5)
 same => n+2,Goto(menu)
exten => 12345,hint,PJSIP/6001
exten => 1,1,Goto(${HOTLINE},menu)
exten => semi,1,NoOp(a\\;b)
;-- a block
comment --;
[common]
exten => i,1,Playback(invalid)
exten => _9X,1,Dial(PJSIP/${EXTEN:1},20,tT)
""",
        )
    )
    assert plan.globals == {"HOTLINE": "12345", "QUEUE": "12345-q"}
    assert plan.step("main", "12345", 2).label == "menu"
    assert plan.priority_of_label("main", "12345", "menu") == 2
    assert plan.priority_of_label("main", "12345", "nope") == -1
    assert plan.step("main", "12345", 6).app == "Goto"  # n+2 after 3
    assert plan.step("main", "semi", 1).data == "a;b"
    inc = plan.step("main", "95", 1)
    assert (inc.app, inc.context, inc.exten) == ("Dial", "common", "_9X")
    assert plan.match("main", "i")
    assert split_app_args(inc.data) == ["PJSIP/${EXTEN:1}", "20", "tT"]


def test_include_loop_is_harmless(tmp_path: Path) -> None:
    plan = load_dialplan(write(tmp_path, "[a]\ninclude => b\n[b]\ninclude => a\n"))
    assert not plan.match("a", "s")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[c]\n same => n,NoOp()\n", ":2: 'same =>' without"),
        ("[c]\nexten => s,n,NoOp()\n", ":2: can't use 'n'"),
        ("[c]\nexten => s,1,NoOp(\n", ":2: no closing parenthesis"),
        ("[c]\nexten => s,1,NoOp()\nexten => s,1,NoOp()\n", ":3: priority 1 of 's'"),
        ("exten => s,1,NoOp()\n", ":1: 'exten' outside"),
        ("[c\n", ":1: malformed context"),
        ("[c]\nexten => s,1(x,NoOp()\n", ":2: label missing"),
        ("[c]\nbogus line\n", ":2: expected 'name => value'"),
        ("[c]\nexten => s,nope,NoOp()\n", ":2: invalid priority/label 'nope'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DialplanError) as info:
        load_dialplan(path)
    assert str(path) + message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DialplanError, match="cannot read dialplan"):
        load_dialplan(tmp_path / "nope.conf")


def test_substitute() -> None:
    variables = {"X": "hello", "N": "4", "B": "1", "A1": "nested", "EXTEN": "913800138000"}
    functions = {"CALLERID": lambda arg: {"num": "5551000", "name": "Sim Caller"}[arg]}
    assert substitute("${X}", variables) == "hello"
    assert substitute("${X:1}", variables) == "ello"
    assert substitute("${X:1:2}", variables) == "el"
    assert substitute("${X:-3}", variables) == "llo"
    assert substitute("${X:0:-1}", variables) == "hell"
    assert substitute("${X:9}", variables) == ""
    assert substitute("${EXTEN:1}", variables) == "13800138000"
    assert substitute("${A${B}}", variables) == "nested"
    assert substitute("${UNSET}|$5|${CALLERID(num)}", variables, functions) == "|$5|5551000"
    assert substitute("${CALLERID(name)} <${CALLERID(num):0:3}>", variables, functions) == (
        "Sim Caller <555>"
    )
    assert substitute("${callerid(num)}", variables, functions) == "5551000"
    assert substitute("${NOFUNC(x)}", variables, functions) == ""
    assert substitute("$[${N} + 1]", variables) == "5"
    assert substitute('$["${X}" = "hello"]', variables) == "1"


def test_expressions() -> None:
    assert evaluate_expression("2 * (3 + 4)") == "14"
    assert evaluate_expression("7 / 2") == "3"
    assert evaluate_expression("5 > 3 & 2 < 1") == "0"
    assert evaluate_expression("0 | 9") == "9"
    assert evaluate_expression("!0") == "1"
    assert evaluate_expression("abc = abc") == "1"


def test_split_app_args() -> None:
    assert split_app_args("") == []
    assert split_app_args("a") == ["a"]
    assert split_app_args("a,") == ["a", ""]
    assert split_app_args('a"b,c"d,e(f,g),[h,i]') == ["ab,cd", "e(f,g)", "[h,i]"]
    assert split_app_args(r"j\,k,l") == ["j,k", "l"]


def test_extension_matching_rules() -> None:
    assert extension_matches("_NXX-XXXX", "2345678")
    assert extension_matches("_1-[2-4]X", "139")
    assert not extension_matches("_1-[2-4]X", "159")
    assert extension_matches("_zX", "10") and not extension_matches("_ZX", "01")
    assert extension_matches("555-1212", "5551212")
    assert not extension_matches(".", "123")  # without '_' a '.' is literal
    assert extension_matches("_X.", "_X.")  # a pattern matches itself
