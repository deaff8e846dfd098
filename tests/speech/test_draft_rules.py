"""Draft extraction on hand-written transcripts: the model's digit mishearings (玲, 幺, an
extra digit), English digits, a landline, an ID number; types and topics of sentences a
hotline hears; spans and evidence; a bad rules file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.speech.draft import DraftExtractor, DraftRulesError, load_rules
from callcenter.speech.numbers import Char, number_spans, with_digit_pass, without_digit_runs
from callcenter.speech.places import SOUND_MATCH, Gazetteer
from callcenter.speech.transcript import Segment, Transcript, Word
from callcenter.tickets.config import load_taxonomy
from tests.speech.conftest import RULES, TAXONOMY

_TABLES = ('[types.complaint]\nkeywords = { "投诉" = 3 }\n'
           '[topics.city_management]\nkeywords = { "占道" = 2 }\n')


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


def heard(*words: tuple[str, float], readings: tuple[str, ...] = ()) -> Transcript:
    """A transcript of (word, confidence) pairs, 0.2 s per character, and the recognizer's
    other ``readings`` of it."""
    out, t = [], 0.0
    for text, conf in words:
        out.append(Word(text, round(t, 3), round(t + 0.2 * len(text), 3), conf))
        t += 0.2 * len(text)
    return Transcript("zh", "test", t, (Segment("citizen", 0.0, t, "", tuple(out), readings),))


def name_chars(*words: tuple[str, float]) -> list[Char]:
    """The characters of a heard place name, one word per pair."""
    out = []
    for index, (text, conf) in enumerate(words):
        out += [Char(ch, 0.0, 0.2, conf, index) for ch in text]
    return out


def test_an_unsure_word_the_model_inserted_drops_out_of_a_town_name(
        extractor: DraftExtractor) -> None:
    """南湖镇 heard as 南湖 和 朕: 和 is left out, and the heard name stays an alternative."""
    draft = extractor.extract(heard(("污水", 1.0), ("在", 0.83), ("南湖", 0.44), ("和", 0.56),
                                    ("朕", 0.5)))
    (place,) = draft.all("address")
    assert place.value == "南湖镇" and place.needs_confirmation
    assert place.alternatives[0] == "南湖和镇" and place.evidence == "南湖和朕"
    assert (place.start, place.end) == (pytest.approx(0.6), pytest.approx(1.4))
    assert 0 < place.confidence < 0.6


@pytest.mark.parametrize(("words", "best"), [
    ((("南湖", 0.44), ("和", 0.56)), "南湖镇"),  # an unsure one-character word drops out
    ((("南湖", 0.44), ("和", 0.9)), None),  # a sure one does not
    ((("南湖和", 0.44),), None),  # nor a character of a longer word
    ((("兰湖", 0.44),), "南湖镇"),  # n and l
    ((("囊湖", 0.44),), "南湖镇"),  # -n and -ng
    ((("干湖", 0.44),), "官湖镇"),  # another initial: another town
])
def test_towns_sounding_like_the_heard_name(words: tuple[tuple[str, float], ...],
                                            best: str | None) -> None:
    near = Gazetteer().sounding_like(name_chars(*words), "镇")
    matched = [name for score, name in near if score >= SOUND_MATCH]
    assert (matched[0] if matched else None) == best
    if best is None:
        assert "南湖镇" not in matched


def test_a_known_place_the_recognizer_also_read_comes_before_sound_alikes(
        extractor: DraftExtractor) -> None:
    """能 和 朕 sounds more like 宁河镇 than 南湖镇; when the recognizer's n-best readings of
    the stretch name 南湖镇, that is the suggestion."""
    words = (("在", 0.85), ("能", 0.41), ("和", 0.61), ("朕", 0.5))
    alone = extractor.extract(heard(*words)).best("address")
    assert alone is not None and alone.value == "宁河镇" and "南湖镇" not in alone.alternatives
    read = extractor.extract(heard(*words, readings=("在南湖朕", "在能和朕", "在南湖镇")))
    place = read.best("address")
    assert place is not None and place.value == "南湖镇" and place.needs_confirmation
    assert place.alternatives[:2] == ("能和镇", "宁河镇")


def test_readings_kept_for_places_hold_no_runs_of_digits() -> None:
    """The masked view of a transcript masks numbers in its words, not in these readings."""
    assert without_digit_runs("电话一三六玲玲一二住在五一路") == "电话住在五一路"
    assert without_digit_runs("在12号和345号") == "在12号和号"


def test_exact_syllables_score_above_confused_ones() -> None:
    same = Gazetteer(["南湖路"]).sounding_like(name_chars(("楠湖", 0.4)), "路")
    near = Gazetteer(["南湖路"]).sounding_like(name_chars(("兰湖", 0.4)), "路")
    dropped = Gazetteer(["南湖路"]).sounding_like(name_chars(("南湖", 0.4), ("和", 0.4)), "路")
    assert same == [(1.0, "南湖路")]
    assert near == [(pytest.approx(0.95 + 0.05), "南湖路")]
    assert dropped == [(pytest.approx(1.0 - 0.1 + 0.05), "南湖路")]


def test_a_known_town_is_kept_as_heard(extractor: DraftExtractor) -> None:
    place = extractor.extract(heard(("在", 0.95), ("南河", 0.95), ("镇", 0.95))).best("address")
    assert place is not None and place.value == "南河镇"
    assert place.alternatives == () and not place.needs_confirmation


def test_the_offices_own_roads_are_matched_by_sound(tmp_path: Path) -> None:
    """jionlp has no roads: the office lists its own, and 解放路 heard as 姐 放 路 is found."""
    path = tmp_path / "rules.toml"
    path.write_text(_TABLES + '[places]\nlocal = ["解放路", "和平小区"]\n', encoding="utf-8")
    words = (("地址", 1.0), ("是", 1.0), ("姐", 0.4), ("放", 0.5), ("路", 0.9), ("二十", 0.9),
             ("号", 0.9))
    place = DraftExtractor(load_rules(path, load_taxonomy(TAXONOMY))).extract(
        heard(*words)).best("address")
    assert place is not None and place.value == "解放路20号" and place.needs_confirmation
    assert place.alternatives == ("姐放路",)
    path.write_text(_TABLES, encoding="utf-8")
    unlisted = DraftExtractor(load_rules(path, load_taxonomy(TAXONOMY))).extract(
        heard(*words)).best("address")
    assert unlisted is not None and unlisted.value == "姐放路20号"


def test_a_jurisdiction_knows_only_its_own_towns_and_villages() -> None:
    rizhao, hangzhou = Gazetteer(jurisdiction="日照市"), Gazetteer(jurisdiction="杭州市")
    assert rizhao.knows("南湖镇") and not hangzhou.knows("南湖镇")
    assert Gazetteer(jurisdiction="东港区").knows("南湖镇")  # a county of 日照市
    assert not Gazetteer(jurisdiction="岚山区").knows("南湖镇")  # another one
    assert Gazetteer().knows("南湖镇") and not Gazetteer().knows("南湖和镇")
    inserted = name_chars(("南湖", 0.44), ("和", 0.56))
    assert rizhao.sounding_like(inserted, "镇")[0][1] == "南湖镇"
    assert "南湖镇" not in [name for _, name in hangzhou.sounding_like(inserted, "镇")]


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
    (_TABLES + '[places]\njurisdiction = "不存在市"\n',
     "places.jurisdiction: 不存在市 is not a province, city or county"),
    (_TABLES + '[places]\nlocal = "解放路"\n', "places.local: a list of place names"),
    (_TABLES + '[places]\nlocal = ["解放"]\n', "places.local: 解放 has no place suffix"),
    (_TABLES + '[places]\ncity = "日照市"\n', "places.city: unknown setting"),
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
