"""Draft extraction on hand-written transcripts: the model's digit mishearings (玲, 幺, an
extra digit), English digits, a landline, an ID number; types and topics of sentences a
hotline hears; spans and evidence; a bad rules file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.speech.draft import DraftExtractor, DraftRulesError, load_rules
from callcenter.speech.numbers import number_spans, with_digit_pass
from callcenter.speech.transcript import Segment, Transcript, Word
from callcenter.tickets.config import load_taxonomy
from tests.speech.conftest import RULES, TAXONOMY


def spoken(words: str, speaker: str = "citizen", conf: float = 1.0) -> Transcript:
    """A transcript of space-separated words, 0.2 s per character (a Latin word: 0.2 s)."""
    out, t = [], 0.0
    for w in words.split():
        d = 0.2 * (1 if w.isascii() else len(w))
        out.append(Word(w, round(t, 3), round(t + d, 3), conf))
        t += d
    return Transcript("zh", "test", t, (Segment(speaker, 0.0, t, words, tuple(out)),))


def test_ling_heard_for_zero_is_read_and_confirmed(extractor: DraftExtractor) -> None:
    phone = extractor.extract(spoken("我 的 电话 是 一三八 玲玲 一二 三四 五六")).best("phone")
    assert phone is not None and phone.value == "13800123456"
    assert phone.needs_confirmation and phone.confidence < 0.85


def test_yao_for_one_written_digits_need_no_confirmation(extractor: DraftExtractor) -> None:
    phone = extractor.extract(spoken("手机 幺 三 九 一 二 三 四 五 六 七 八")).best("phone")
    assert phone is not None and phone.value == "13912345678"
    assert not phone.needs_confirmation and phone.confidence >= 0.85


def test_an_extra_digit_gives_a_valid_number_to_confirm(extractor: DraftExtractor) -> None:
    phone = extractor.extract(spoken("电话 一 三 九 一 二 三 四 五 六 七 八 八")).best("phone")
    assert phone is not None and phone.value == "13912345678"
    assert phone.needs_confirmation and "13912345688" in phone.alternatives


def test_homophones_after_a_misheard_cue(extractor: DraftExtractor) -> None:
    """电话 heard as 变化, 一五 as 业务, 九八 as 酒吧: read by sound."""
    phone = extractor.extract(spoken("变化 业务 酒吧 八 七 七 六 六 五 五")).best("phone")
    assert phone is not None and phone.value == "15988776655" and phone.needs_confirmation


def test_digit_pass_replaces_the_numbers_words() -> None:
    """The span of 业务 酒吧 ... is found, and the second pass's digits take its place."""
    transcript = spoken("电话 业务 酒吧 八 七 七 六 六 五 五 谢谢")
    (span,) = number_spans(transcript.segments)
    assert span.speaker == "citizen"
    assert (span.start, span.end) == (pytest.approx(0.35), pytest.approx(2.65))
    digits = [Word(d, 0.4 + 0.2 * i, 0.6 + 0.2 * i, 1.0)
              for i, d in enumerate("一五九八八七七六六五五")]
    (segment,) = with_digit_pass(transcript.segments, span, [*digits, Word("[unk]", 2.6, 2.8, 1)])
    assert segment.text == "电话 一 五 九 八 八 七 七 六 六 五 五 谢谢"
    assert segment.words[1:12] == tuple(digits)
    assert with_digit_pass(transcript.segments, span, []) == transcript.segments


def test_english_digits(extractor: DraftExtractor) -> None:
    draft = extractor.extract(spoken(
        "my phone number is one three nine one two three four five six seven eight"))
    phone = draft.best("phone")
    assert phone is not None and phone.value == "13912345678"


def test_landline(extractor: DraftExtractor) -> None:
    phone = extractor.extract(spoken("座机 零 五 七 一 八 七 六 五 四 三 二 一")).best("phone")
    assert phone is not None and phone.value == "057187654321"


def test_id_number_with_x(extractor: DraftExtractor) -> None:
    draft = extractor.extract(
        spoken("身份证号 一 一 零 一 零 五 一 九 九 零 零 一 零 一 一 二 三 X"))
    number = draft.best("id_number")
    assert number is not None and number.value == "11010519900101123X"
    assert draft.best("phone") is None


def test_phone_span_and_evidence_come_from_the_words(extractor: DraftExtractor) -> None:
    draft = extractor.extract(spoken("投诉 噪音 电话 是 一 三 九 一 二 三 四 五 六 七 八"))
    phone = draft.best("phone")
    assert phone is not None
    assert (phone.start, phone.end) == (1.4, 3.6)  # 投诉 噪音 电话 是 = 7 characters
    assert phone.evidence == "一三九一二三四五六七八"


def test_summary_has_no_personal_numbers(extractor: DraftExtractor) -> None:
    draft = extractor.extract(spoken(
        "你好 我 要 投诉 楼下 烧烤店 半夜 太 吵 了 我 的 电话 是 一 三 九 一 二 三 四 五 六 七 八"))
    summary = draft.best("summary")
    assert summary is not None and summary.value == "楼下烧烤店半夜太吵了"


@pytest.mark.parametrize(("words", "kind", "topic", "unit"), [
    ("我 想 咨询 一下 住房 公积金 怎么 提取", "consultation", "housing", "housing_bureau"),
    ("隔壁 工地 半夜 施工 噪音 扰民 我 要 投诉", "complaint", "urban_management",
     "urban_management_bureau"),
    ("我 要 举报 有人 非法 集资", "report", "finance_insurance", "finance_office"),
    ("我们 这 停水 三天 了 请 尽快 派人 来 看看", "help", "utilities", "water_company"),
    ("建议 在 学校 门口 增设 红绿灯", "suggestion", "transport", "transport_bureau"),
    ("感谢 公交 司机 帮 我 找回 了 钱包", "praise", "transport", "transport_bureau"),
])
def test_hotline_sentences(extractor: DraftExtractor, words: str, kind: str, topic: str,
                           unit: str) -> None:
    draft = extractor.extract(spoken(words))
    assert [draft.best(f).value for f in ("type", "topic", "unit")] == [kind, topic, unit]


def test_places_by_suffix_and_by_sound(extractor: DraftExtractor) -> None:
    draft = extractor.extract(spoken("地址 在 人民 路 三十八 号 和 幸福 小区 三 栋", conf=0.95))
    assert [s.value for s in draft.all("address")] == ["人民路38号", "幸福小区3栋"]
    unsure = Transcript("zh", "t", 1.0, (Segment("citizen", 0, 1, "文化 六", (
        Word("文化", 0.0, 0.4, 0.99), Word("六", 0.4, 0.6, 0.3))),))
    place = extractor.extract(unsure).best("address")
    assert place is not None and place.value == "文化路" and place.needs_confirmation


def test_road_lamp_is_not_a_road(extractor: DraftExtractor) -> None:
    assert extractor.extract(spoken("门口 的 太阳能 路灯 坏 了")).all("address") == ()


def test_dates(extractor: DraftExtractor) -> None:
    draft = extractor.extract(spoken("电梯 坏 了 两个 星期 了 请 明天 下午 来 修"))
    assert [s.value for s in draft.all("date")] == ["2个星期了", "明天下午"]


def test_agent_words_are_not_the_request(extractor: DraftExtractor) -> None:
    assert extractor.extract(spoken("我 要 投诉 电话 一 三 九 一 二 三 四 五 六 七 八",
                                    speaker="agent")).suggestions == ()


def test_rules_resolve_topic_aliases(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[types.complaint]\nkeywords = { "投诉" = 3 }\n'
                    '[topics.city_management]\nkeywords = { "占道" = 2 }\n', encoding="utf-8")
    rules = load_rules(path, load_taxonomy(TAXONOMY))
    assert list(rules.topics) == ["urban_management"]
    assert rules.units == {"urban_management": "urban_management_bureau"}


@pytest.mark.parametrize(("text", "message"), [
    ('[types.complaint]\nkeywords = { "投诉" = 3 }\n[topics.weather]\nkeywords = { "雨" = 1 }\n',
     "topics.weather: not a topic of the taxonomy"),
    ('[types.gossip]\nkeywords = { "八卦" = 1 }\n', "types.gossip: unknown ticket type"),
    ('[types.complaint]\nkeywords = { "投诉" = -1 }\n',
     "types.complaint.keywords.投诉: weight must be a positive number"),
    ("[types.complaint\n", "not valid TOML"),
])
def test_bad_rules_name_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DraftRulesError) as err:
        load_rules(path, load_taxonomy(TAXONOMY))
    assert str(path) in str(err.value) and message in str(err.value)


def test_shipped_rules_load() -> None:
    rules = load_rules(RULES, load_taxonomy(TAXONOMY))
    assert set(rules.types) == {"consultation", "help", "complaint", "report", "suggestion",
                                "praise"}
