"""Drafts from real Vosk transcripts of the shared samples: each citizen sample's type,
topic, phone number and address words as truth.json gives them, and the accuracy over all."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.speech.draft import DraftExtractor
from callcenter.speech.numbers import number_spans
from callcenter.speech.transcript import Transcript
from callcenter.tickets.config import load_taxonomy
from tests.speech.conftest import TAXONOMY, address_words_found, measure, same_topic, truth

CITIZEN = [t["id"] for t in truth() if t["speaker"] == "citizen" and t.get("type")]
# Measured misses of the small model's transcript that the extractor cannot recover
# (strict: a fix makes them fail until the mark is removed).
KNOWN_PHONE_MISS = {"c01": "一一二二三三四四 comes back as 一二三 三次 神: two doubled digits lost "
                           "(the digit pass recovers it)"}


def _marked(ids: list[str], known: dict[str, str]) -> list[Any]:
    return [pytest.param(i, marks=pytest.mark.xfail(strict=True, reason=known[i]))
            if i in known else i for i in ids]


@pytest.mark.parametrize("sample", CITIZEN)
def test_sample_type_and_topic(sample: str, sample_transcripts: dict[str, Transcript],
                               extractor: DraftExtractor,
                               sample_truth: dict[str, dict[str, Any]]) -> None:
    expected = sample_truth[sample]
    draft = extractor.extract(sample_transcripts[sample])
    kind, topic, unit = draft.best("type"), draft.best("topic"), draft.best("unit")
    assert kind is not None and kind.value == expected["type"]
    assert topic is not None and same_topic(load_taxonomy(TAXONOMY), topic.value, expected["topic"])
    assert unit is not None and unit.value == load_taxonomy(TAXONOMY).default_units(topic.value)[0]
    assert 0 < kind.confidence <= 1 and kind.start < kind.end


PHONES = [t["id"] for t in truth() if t.get("phone")]
ADDRESSES = [t["id"] for t in truth() if t.get("address")]


@pytest.mark.parametrize("sample", _marked(PHONES, KNOWN_PHONE_MISS))
def test_sample_phone(sample: str, sample_transcripts: dict[str, Transcript],
                      extractor: DraftExtractor, sample_truth: dict[str, dict[str, Any]]) -> None:
    draft = extractor.extract(sample_transcripts[sample])
    phone = draft.best("phone")
    assert phone is not None and phone.value == sample_truth[sample]["phone"]
    assert phone.needs_confirmation  # heard through homophones: the agent confirms


@pytest.mark.parametrize("sample", ADDRESSES)
def test_sample_address_words(sample: str, sample_transcripts: dict[str, Transcript],
                              extractor: DraftExtractor,
                              sample_truth: dict[str, dict[str, Any]]) -> None:
    draft = extractor.extract(sample_transcripts[sample])
    found, total = address_words_found(draft, sample_truth[sample]["address"])
    assert total > 0 and found == total


@pytest.mark.parametrize("sample", PHONES)
def test_sample_phone_after_a_digit_pass(sample: str,
                                         digit_pass_transcripts: dict[str, Transcript],
                                         extractor: DraftExtractor,
                                         sample_truth: dict[str, dict[str, Any]]) -> None:
    """Decoding the number's span again digit by digit gives every sample's number."""
    phone = extractor.extract(digit_pass_transcripts[sample]).best("phone")
    assert phone is not None and phone.value == sample_truth[sample]["phone"]


def test_a_misheard_town_is_matched_in_the_gazetteer_and_confirmed(
        sample_transcripts: dict[str, Transcript], extractor: DraftExtractor) -> None:
    """南湖镇 is heard as 南湖 和 朕: the town is suggested, the heard words kept."""
    place = extractor.extract(sample_transcripts["c03"]).best("address")
    assert place is not None and place.value == "南湖镇" and place.needs_confirmation
    assert place.evidence == "南湖和朕" and place.alternatives[0] == "南湖和镇"


@pytest.mark.parametrize("sample", [t["id"] for t in truth()
                                    if t["speaker"] == "citizen" and not t.get("phone")])
def test_the_digit_pass_leaves_recordings_without_numbers_as_they_were(
        sample: str, sample_transcripts: dict[str, Transcript],
        digit_pass_transcripts: dict[str, Transcript]) -> None:
    """It decodes only numbers' spans, and every decode starts from the same dither, so the
    decodes of other files before this one change nothing (they used to: c03's 南湖 became
    能 in the digit-pass run, and the address words fell from 80 % to 60 %)."""
    assert not number_spans(sample_transcripts[sample].segments)
    assert digit_pass_transcripts[sample] == sample_transcripts[sample]


def test_sample_times_and_summary(sample_transcripts: dict[str, Transcript],
                                  extractor: DraftExtractor) -> None:
    c01 = extractor.extract(sample_transcripts["c01"])
    assert [s.value for s in c01.all("date")] == ["每天早上"]
    summary = c01.best("summary")
    assert summary is not None and summary.value.startswith("菜市场门口每天早上有人占道经营")
    assert not any(ch in summary.value for ch in "一三六") and "电话" not in summary.value
    c07 = extractor.extract(sample_transcripts["c07"])
    assert [s.value for s in c07.all("date")] == ["2个月"]


def test_samples_without_numbers_or_places_get_none(
        sample_transcripts: dict[str, Transcript], extractor: DraftExtractor) -> None:
    for sample in ("c02", "c06", "c08"):
        draft = extractor.extract(sample_transcripts[sample])
        assert draft.all("phone") == () and draft.all("address") == ()


def test_agent_samples_give_no_draft(sample_transcripts: dict[str, Transcript],
                                     extractor: DraftExtractor) -> None:
    """a01 says 一二三四五热线: the agent's words are not the citizen's request."""
    for sample in ("a01", "a02"):
        assert extractor.extract(sample_transcripts[sample]).suggestions == ()


def test_accuracy_over_all_citizen_samples(sample_transcripts: dict[str, Transcript],
                                           extractor: DraftExtractor) -> None:
    """Targets: type >= 90 %, topic >= 85 %, address words >= 90 %; without the digit pass
    c01's phone number is lost (the known miss above; ``bench/speech_draft_accuracy.py``
    reports it)."""
    rates = measure(extractor, sample_transcripts, truth()).rates()
    assert rates["type"] >= 0.9 and rates["topic"] >= 0.85 and rates["address_words"] >= 0.9
    assert rates["phone_exact"] == 0.5


def test_accuracy_with_the_digit_pass(digit_pass_transcripts: dict[str, Transcript],
                                      extractor: DraftExtractor) -> None:
    rates = measure(extractor, digit_pass_transcripts, truth()).rates()
    assert rates["type"] >= 0.9 and rates["topic"] >= 0.85 and rates["phone_exact"] >= 0.95
    assert rates["address_words"] >= 0.9
