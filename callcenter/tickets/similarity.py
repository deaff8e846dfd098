"""Chinese text similarity for hotline orders: jieba words, TF-IDF weights, cosine.

Why words and not character n-grams: two orders about the same matter share words such as
工地/噪音/夜间 while sharing many characters with unrelated orders (小区, 反映, 问题).
Texts are normalised first (full-width → half-width, Chinese numerals before 号/栋/楼 → digits,
synonyms of the hotline's vocabulary → one word), then segmented; stop words of intake
boilerplate (市民来电反映, 希望尽快处理 ...) are dropped. Weights use jieba's bundled IDF table,
so scoring needs no corpus statistics and gives the same answer on every engine.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from functools import lru_cache
from typing import NamedTuple

import jieba
import jieba.analyse

jieba.setLogLevel(logging.WARNING)

TermVector = dict[str, float]

# Different wordings of the same thing, rewritten before segmentation (longest first).
SYNONYMS: dict[str, str] = {
    "违章建筑": "违建", "违法建筑": "违建", "私搭乱建": "违建", "乱搭乱建": "违建",
    "私自搭建": "违建", "违规搭建": "违建", "违章搭建": "违建", "加盖": "违建",
    "噪声": "噪音", "吵闹": "噪音", "声音很大": "噪音", "轰鸣": "噪音",
    "深夜": "夜间", "半夜": "夜间", "凌晨": "夜间", "晚上": "夜间", "夜里": "夜间",
    "夜晚": "夜间", "彻夜": "夜间",
    "断水": "停水", "没水": "停水", "没有水": "停水", "不来水": "停水", "无水": "停水",
    "水停了": "停水", "自来水停": "停水",
    "物业管理费": "物业费", "物管费": "物业费", "物业收费": "物业费",
    "物业公司": "物业", "物业服务": "物业",
    "工地": "施工", "建筑工地": "施工", "施工方": "施工", "作业": "施工",
    "扰民": "噪音",
}

# Intake boilerplate and function words that say nothing about the matter.
STOP_WORDS: frozenset[str] = frozenset("""
办理 怎么办 怎么样 请问 能不能 可不可以 需要 应该
市民 来电 反映 反应 称 表示 咨询 投诉 举报 希望 要求 请求 诉求 尽快
及时 处理 解决 协调 相关 部门 有关 单位 问题 情况 事情 目前 现在
已经 一直 多次 非常 特别 十分 严重 影响 导致 造成 位于 附近 旁边
周边 一下 我们 他们 她们 你们 这个 那个 这些 那些 自己 没有 不是
就是 还是 但是 因为 所以 如果 可以 能否 是否 怎么 什么 为什么 如何
感谢 谢谢 您好 你好 麻烦 帮忙 帮助 给予 进行 存在 出现 发生 开始
每天 今天 昨天 前天 最近 近期 期间 以来 之后 之前 时候 地方 工作人员
人员 小区 居民 业主 住户 本人 家里 的 了 在 是 有 和 与 及 或 就
都 也 很 还 又 被 把 让 给 对 从 到 向 等 着 过 吗 呢 吧 啊
呀 请 该 其
""".split())

# Single characters that do carry the matter (most single characters do not).
MEANINGFUL_CHARS = frozenset("水电气暖路灯树狗猫车油烟臭")

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER_BEFORE_UNIT = re.compile(
    r"([零〇一二两三四五六七八九十]{1,4})(?=[号栋幢楼单元层室期巷弄排])")
_SPACES = re.compile(r"\s+")
_SYNONYM_PATTERN = re.compile("|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)))


def _cn_to_int(text: str) -> int:
    """十二 → 12, 二十 → 20, 三 → 3 (the small numbers used in addresses)."""
    if "十" not in text:
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    tens, _, units = text.partition("十")
    tens_value = _CN_DIGITS.get(tens, 1) if tens else 1
    return tens_value * 10 + (_CN_DIGITS.get(units, 0) if units else 0)


def normalise(text: str) -> str:
    """Full-width → half-width, lower case, 三号楼 → 3号楼, synonyms → one word."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _CN_NUMBER_BEFORE_UNIT.sub(lambda m: str(_cn_to_int(m.group(1))), text)
    text = _SYNONYM_PATTERN.sub(lambda m: SYNONYMS[m.group(0)], text)
    return _SPACES.sub(" ", text)


def _keep(token: str) -> bool:
    if not token.strip() or token in STOP_WORDS:
        return False
    if token.isdigit() or re.fullmatch(r"\d+(\.\d+)?", token):
        return len(token) <= 6  # house numbers yes, phone numbers and dates no
    if len(token) == 1:
        return token in MEANINGFUL_CHARS
    return any(c.isalnum() for c in token)


def tokenize(text: str) -> list[str]:
    """Meaningful words of ``text`` in order (duplicates kept for term frequency)."""
    return [t for t in jieba.lcut(normalise(text)) if _keep(t)]


class TextFeatures(NamedTuple):
    """What matching needs from one text: its term vector and the places it names."""

    vector: TermVector
    places: frozenset[str]


def features(text: str) -> TextFeatures:
    """Term vector and places of ``text`` from one segmentation."""
    tokens = jieba.lcut(normalise(text))
    return TextFeatures(_vector([t for t in tokens if _keep(t)]), frozenset(_places(tokens)))


@lru_cache(maxsize=1)
def _idf() -> tuple[Mapping[str, float], float]:
    table = jieba.analyse.default_tfidf
    return table.idf_freq, table.median_idf


# Place names: "阳光" + "花园" → 阳光花园, "和平街", "建设路". Two orders naming different places
# are about different matters, however alike their words (夜间施工噪音 happens everywhere).
PLACE_SUFFIXES = frozenset(
    "花园 家园 小区 公寓 大厦 广场 新村 社区 苑 园 街 路 大道 村 巷 里".split())
_GENERIC_PLACES = frozenset("马路 道路 公路 农村 乡村 小区 花园 社区 街道 铁路 一路 沿路".split())
_CJK = re.compile(r"[\u4e00-\u9fff]+")


def places(text: str) -> set[str]:
    """Estate, road and village names mentioned in ``text``."""
    return _places(jieba.lcut(normalise(text)))


def _places(tokens: list[str]) -> set[str]:
    found: set[str] = set()
    for prev, token in zip(["", *tokens], tokens, strict=False):
        if token in PLACE_SUFFIXES:
            if (2 <= len(prev) <= 4 and _CJK.fullmatch(prev) and prev not in STOP_WORDS
                    and prev not in PLACE_SUFFIXES):
                found.add(prev + token)
        elif (len(token) >= 3 and _CJK.fullmatch(token) and token not in _GENERIC_PLACES
              and any(token.endswith(x) for x in PLACE_SUFFIXES if len(x) <= 2)):
            found.add(token)
    return found


def same_place(a: AbstractSet[str], b: AbstractSet[str]) -> bool:
    """False only when both name places and none is shared."""
    return not a or not b or not a.isdisjoint(b)


def idf(term: str) -> float:
    """Rarity of ``term`` in jieba's reference corpus; unknown words count as rare."""
    freq, median = _idf()
    if term.isdigit():
        return median * 0.5  # house numbers help only alongside the words around them
    return freq.get(term, median * 1.2)


def term_vector(text: str) -> TermVector:
    """Unit-length TF-IDF vector of ``text`` (sub-linear term frequency)."""
    return _vector(tokenize(text))


def _vector(tokens: list[str]) -> TermVector:
    counts = Counter(tokens)
    weights = {t: (1.0 + math.log(n)) * idf(t) for t, n in counts.items()}
    return _unit(weights)


def _unit(weights: Mapping[str, float]) -> TermVector:
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {t: w / norm for t, w in weights.items()} if norm else {}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two unit vectors (0 when either is empty)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def centroid(vectors: Iterable[Mapping[str, float]]) -> TermVector:
    """The unit-length mean of ``vectors``: what a group of orders is about."""
    total: Counter[str] = Counter()
    for vector in vectors:
        total.update(vector)
    return _unit(total)


def key_terms(vector: Mapping[str, float], n: int = 5) -> list[str]:
    """The ``n`` heaviest terms, for summaries and for finding candidate groups."""
    return [t for t, _ in sorted(vector.items(), key=lambda item: (-item[1], item[0]))[:n]]


def warm_up() -> None:
    """Load jieba's dictionary now (about a second) rather than inside the first request."""
    jieba.initialize()
    _idf()


SEARCH_WORD_MAX = 32


def search_words(text: str) -> set[str]:
    """The words an order's ``text`` is found by in ticket search (``search.py``).

    Every dictionary word inside the text (jieba's full mode: 路灯不亮 → 路灯, 灯, 不亮), after
    the same normalisation as matching (synonyms, numerals), stop words and lone characters
    out. Full mode does not depend on how the sentence happens to be cut, so a query word
    that occurs in the text is always among its words.
    """
    return {w[:SEARCH_WORD_MAX] for w in jieba.cut(normalise(text), cut_all=True) if _keep(w)}


def query_words(text: str) -> set[str]:
    """The words a search for ``text`` requires (all of them).

    The query is cut precisely (a query is short, its words are what the agent means); a
    word missing from the dictionary (a new word guessed by jieba, e.g. 灯不亮) is replaced
    by the dictionary words inside it, which is how the order's text was indexed.
    """
    words: set[str] = set()
    dictionary = jieba.dt.FREQ
    for token in jieba.lcut(normalise(text)):
        if not _keep(token):
            continue
        if dictionary.get(token):
            words.add(token[:SEARCH_WORD_MAX])
        else:
            words.update(w[:SEARCH_WORD_MAX] for w in jieba.cut(token, cut_all=True)
                         if _keep(w))
    return words


def features_and_words(text: str) -> tuple[TextFeatures, set[str]]:
    """Matching features and search words of ``text`` (registration needs both)."""
    return features(text), search_words(text)


def similarity(a: str, b: str) -> float:
    return cosine(term_vector(a), term_vector(b))
