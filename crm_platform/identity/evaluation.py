"""Pairwise precision, recall and F1 of an identity map against known clusters (the generator's
truth, or a hand-labelled sample): the measure record-linkage papers and Splink report."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

KEY = ["source_system", "source_id"]


@dataclass(frozen=True)
class PairwiseScores:
    records: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {"records": self.records, "true_pairs": self.true_pairs, "predicted_pairs": self.predicted_pairs,
                "correct_pairs": self.correct_pairs, "precision": round(self.precision, 5),
                "recall": round(self.recall, 5), "f1": round(self.f1, 5)}


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_scores(identity_map: pd.DataFrame, truth: pd.DataFrame) -> PairwiseScores:
    """`identity_map`: source_system, source_id, lead_id; `truth`: source_system, source_id,
    person_id. Records present in both count; a pair is two records in one cluster."""
    both = identity_map[KEY + ["lead_id"]].astype(str).merge(truth[KEY + ["person_id"]].astype(str), on=KEY)
    return PairwiseScores(
        records=len(both),
        true_pairs=_pairs(both.groupby("person_id").size()),
        predicted_pairs=_pairs(both.groupby("lead_id").size()),
        correct_pairs=_pairs(both.groupby(["lead_id", "person_id"]).size()),
    )
