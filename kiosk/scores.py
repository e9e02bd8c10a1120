"""Scores and the figures the contract defines on them (pure)."""

from __future__ import annotations

from collections.abc import Mapping

SCORES = (4, 3, 2, 1)

LABELS_VI = {4: "Rất hài lòng", 3: "Hài lòng", 2: "Bình thường", 1: "Không hài lòng"}
LABELS_EN = {4: "Very satisfied", 3: "Satisfied", 2: "Neutral", 1: "Dissatisfied"}

# Index on 0..100: score 4 = 100, 3 = 66.7, 2 = 33.3, 1 = 0.
_INDEX_POINTS = {4: 100.0, 3: 200.0 / 3.0, 2: 100.0 / 3.0, 1: 0.0}


def satisfaction_rate(by_score: Mapping[int, int]) -> float | None:
    """(score 4 + score 3) / all ratings; None when there are no ratings."""
    total = sum(by_score.get(s, 0) for s in SCORES)
    if total == 0:
        return None
    return (by_score.get(4, 0) + by_score.get(3, 0)) / total


def average_score(by_score: Mapping[int, int]) -> float | None:
    total = sum(by_score.get(s, 0) for s in SCORES)
    if total == 0:
        return None
    return sum(s * by_score.get(s, 0) for s in SCORES) / total


def satisfaction_index(by_score: Mapping[int, int]) -> float | None:
    total = sum(by_score.get(s, 0) for s in SCORES)
    if total == 0:
        return None
    return sum(_INDEX_POINTS[s] * by_score.get(s, 0) for s in SCORES) / total
