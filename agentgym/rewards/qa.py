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
    if common == 0:
        return float(pred == ref)  # both empty counts as a match
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    """The highest F1 of ``prediction`` against any gold answer or alias."""
    return max((f1(prediction, g) for g in golds), default=0.0)


def best_em(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when ``prediction`` equals a gold answer or alias after normalisation."""
    return float(any(normalize(prediction) == normalize(g) for g in golds))


def substring_match(prediction: str, golds: Sequence[str]) -> float:
    """LoongRL's two-way substring match: gold in prediction or prediction in gold."""
    p = normalize(prediction)
    if not p:
        return 0.0
    return float(any((g := normalize(x)) and (g in p or p in g) for x in golds))
