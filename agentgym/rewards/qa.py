"""Answer rewards of open-domain QA: exact match and token F1 (SQuAD normalisation), the best
over a gold answer's aliases, and LoongRL's two-way substring match."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence


def normalize(text: str) -> str:
    """Lower-case, strip punctuation and articles, squeeze spaces (SQuAD-style)."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    """Token F1 between two answers after normalisation."""
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:  # an empty answer never matches, not even a gold that normalises to ""
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    """The highest F1 of ``prediction`` against any gold answer or alias."""
    return max((f1(prediction, g) for g in golds), default=0.0)


def best_em(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when ``prediction`` equals a gold answer or alias after normalisation."""
    said = normalize(prediction)
    return float(bool(said) and any(said == normalize(g) for g in golds))


def substring_match(prediction: str, golds: Sequence[str], slack: int = 4) -> float:
    """LoongRL's two-way substring match, on whole words and bounded so that it cannot be
    gamed: the gold inside a prediction at most ``slack`` words longer than it ("It was X."),
    or the prediction inside the gold covering at least half of its words ("Vornoutan" for
    "Lythwyth Vornoutan"). A one-letter answer (inside every gold, character-wise) and a
    list of every candidate (containing every gold) score 0."""
    p = normalize(prediction).split()
    for gold in golds:
        g = normalize(gold).split()
        if (
            p
            and g
            and (
                (_contains(p, g) and len(p) <= len(g) + slack)
                or (_contains(g, p) and 2 * len(p) >= len(g))
            )
        ):
            return 1.0
    return 0.0


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (after ``normalize``)."""
    part = normalize(phrase).split()
    return bool(part) and _contains(normalize(text).split(), part)


def _contains(words: list[str], part: list[str]) -> bool:
    """Whether ``part`` occurs in ``words`` as a contiguous run."""
    n = len(part)
    return any(words[i : i + n] == part for i in range(len(words) - n + 1))
