"""Lexicon sentiment for Chinese and English social mentions, when producers send none.

A mention is split into runs of CJK characters and English words. CJK runs
are segmented by forward maximum matching against the lexicon
(:mod:`monitor.sentiment_lexicon`), English words looked up whole. Each
sentiment word adds its weight, multiplied by a preceding intensifier
(非常, 太, very...) and flipped and damped by a preceding negator (不, 没,
别, not, never...) within a short reach; punctuation ends that reach. The sum
is squashed into -1..1. Measured on the labelled sample in
``tests/monitor/test_sentiment.py`` (accuracy in docs/rules.md).
"""

from __future__ import annotations

import math
import re
from typing import Final

from watchfloor.monitor import sentiment_lexicon as lex

__all__ = ["contains_any", "score"]

_ZH_TERMS: Final[dict[str, float]] = {
    **lex.ZH_POSITIVE,
    **lex.ZH_NEGATIVE,
    **lex.ZH_NEUTRAL_BLOCKERS,
}
_EN_TERMS: Final[dict[str, float]] = {**lex.EN_POSITIVE, **lex.EN_NEGATIVE}
_ZH_NEGATORS: Final = frozenset(lex.ZH_NEGATORS)
_EN_NEGATORS: Final = frozenset(lex.EN_NEGATORS)
_ZH_MAX: Final = max(len(w) for w in [*_ZH_TERMS, *_ZH_NEGATORS, *lex.ZH_INTENSIFIERS])
_TOKENS = re.compile(r"[\u4e00-\u9fff]+|[a-z][a-z']*|\d+|[!！?？。，,.;；~]")
_REACH: Final = 3  # words (English) / segments (Chinese) a negator or intensifier reaches
_NEGATION_DAMPING: Final = 0.7
_BREAKS: Final = frozenset("。，,.;；?？")


class _State:
    __slots__ = ("boost", "boost_left", "hits", "neg_left", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.hits = 0
        self.neg_left = 0
        self.boost = 1.0
        self.boost_left = 0

    def term(self, weight: float) -> None:
        if weight == 0.0:
            self.step()
            return
        value = weight * (self.boost if self.boost_left > 0 else 1.0)
        if self.neg_left > 0:
            value = -value * _NEGATION_DAMPING
        self.total += value
        self.hits += 1
        self.neg_left = self.boost_left = 0

    def negate(self) -> None:
        self.neg_left = _REACH

    def intensify(self, factor: float) -> None:
        self.boost = factor
        self.boost_left = _REACH

    def step(self) -> None:
        self.neg_left = max(0, self.neg_left - 1)
        self.boost_left = max(0, self.boost_left - 1)

    def stop(self) -> None:
        self.neg_left = self.boost_left = 0


def score(text: str) -> float:
    """Sentiment of ``text`` in -1 (negative) .. 1 (positive); 0 when nothing is known."""
    state = _State()
    for token in _TOKENS.findall(text.lower()):
        first = token[0]
        if "\u4e00" <= first <= "\u9fff":
            _chinese(token, state)
        elif first.isalpha():
            _english(token, state)
        elif token in _BREAKS:
            state.stop()
        elif token in "!！" and state.hits:
            state.total *= 1.15
    if not state.hits:
        return 0.0
    return math.tanh(state.total / 2.0)


def _english(word: str, state: _State) -> None:
    if word in _EN_NEGATORS or word.endswith("n't"):
        state.negate()
    elif word in lex.EN_INTENSIFIERS:
        state.intensify(lex.EN_INTENSIFIERS[word])
    elif word in _EN_TERMS:
        state.term(_EN_TERMS[word])
    else:
        state.step()


def _chinese(run: str, state: _State) -> None:
    i, n = 0, len(run)
    while i < n:
        word = _longest(run, i)
        if word is None:
            state.step()
            i += 1
            continue
        after = i + len(word)
        if word in lex.ZH_INTENSIFIERS and (word not in _ZH_TERMS or _longest(run, after)):
            state.intensify(lex.ZH_INTENSIFIERS[word])
        elif word in _ZH_NEGATORS and word not in _ZH_TERMS:
            state.negate()
        else:
            state.term(_ZH_TERMS[word])
        i = after


def _longest(run: str, i: int) -> str | None:
    for size in range(min(_ZH_MAX, len(run) - i), 0, -1):
        word = run[i : i + size]
        if word in _ZH_TERMS or word in _ZH_NEGATORS or word in lex.ZH_INTENSIFIERS:
            return word
    return None


def contains_any(text: str, words: tuple[str, ...]) -> list[str]:
    """Which of ``words`` occur in ``text`` (case-insensitive), e.g. complaint words."""
    lowered = text.lower()
    return [w for w in words if w.lower() in lowered]
