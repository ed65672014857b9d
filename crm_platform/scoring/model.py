"""The scikit-learn models: a gradient-boosted Pipeline calibrated on a later time slice, and a
logistic-regression baseline that also explains each score.

- `ScoringModel.model`: ColumnTransformer (numbers as they are, NULL left missing; categories
  ordinal-encoded, unknown or NULL as missing) + HistGradientBoostingClassifier with native
  categorical splits, seeded, no early stopping (no random inner split); then
  CalibratedClassifierCV on the frozen pipeline, fitted on the validation slice only.
- `ScoringModel.baseline`: median imputation with missing indicators, standardization and one-hot
  categories + LogisticRegression, fitted on the training slice.
- Top features: the baseline's per-row contributions to its log-odds, coefficient x (standardized
  value - its training mean), summed over a feature's columns (its one-hot categories, its missing
  indicator). They explain the baseline's view of the lead, which ranks like the model (both are
  reported on the test rows), not the boosted trees' exact path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.dataset import Columns


def gradient_boosting(columns: Columns, config: ScoringConfig) -> Pipeline:
    pre = ColumnTransformer(
        [("num", "passthrough", list(columns.numeric)),
         ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                encoded_missing_value=np.nan), list(columns.categorical))],
        verbose_feature_names_out=False)
    m = config.model
    hgb = HistGradientBoostingClassifier(
        learning_rate=m.learning_rate, max_iter=m.max_iter, max_leaf_nodes=m.max_leaf_nodes,
        min_samples_leaf=m.min_samples_leaf, l2_regularization=m.l2_regularization,
        categorical_features=[False] * len(columns.numeric) + [True] * len(columns.categorical),
        early_stopping=False, random_state=config.seed)
    return Pipeline([("features", pre), ("classifier", hgb)])


def logistic_baseline(columns: Columns, config: ScoringConfig) -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                        ("scale", StandardScaler())])
    pre = ColumnTransformer(
        [("num", numeric, list(columns.numeric)),
         ("cat", Pipeline([("fill", SimpleImputer(strategy="constant", fill_value="(missing)")),
                           ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]),
          list(columns.categorical))])
    return Pipeline([("features", pre),
                     ("classifier", LogisticRegression(C=config.baseline.C, max_iter=5000))])


@dataclass
class ScoringModel:
    """What the artifact holds: the calibrated model, the baseline that explains it, the columns it
    reads, and the reference distributions for drift."""
    model: CalibratedClassifierCV
    baseline: Pipeline
    columns: Columns
    owners: list[str]  # the original feature behind each of the baseline's columns
    means: np.ndarray  # the baseline's transformed training means (contributions are relative to them)
    drift_reference: dict

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[list(self.columns.all)]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.frame(frame))[:, 1]

    def predict_baseline(self, frame: pd.DataFrame) -> np.ndarray:
        return self.baseline.predict_proba(self.frame(frame))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """Per row and original feature, the baseline's log-odds contribution."""
        z = self.baseline.named_steps["features"].transform(self.frame(frame))
        coef = self.baseline.named_steps["classifier"].coef_[0]
        per_column = (np.asarray(z, dtype="float64") - self.means) * coef
        names = list(dict.fromkeys(self.owners))
        index = {n: i for i, n in enumerate(names)}
        out = np.zeros((per_column.shape[0], len(names)))
        np.add.at(out.T, np.array([index[o] for o in self.owners]), per_column.T)
        return names, out

    def top_features(self, frame: pd.DataFrame, k: int) -> list[str]:
        """Each row's k largest contributions by size, as JSON text: [{"feature", "contribution"}]."""
        names, contrib = self.contributions(frame)
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        return [json.dumps([{"feature": names[j], "contribution": round(float(row[j]), 4)} for j in idx])
                for row, idx in zip(contrib, order)]


def owners_of(baseline: Pipeline, columns: Columns) -> list[str]:
    pre: ColumnTransformer = baseline.named_steps["features"]
    owners: list[str] = []
    num = pre.named_transformers_["num"]
    imputer: SimpleImputer = num.named_steps["impute"]
    owners += list(columns.numeric)
    if imputer.indicator_ is not None:
        owners += [columns.numeric[i] for i in imputer.indicator_.features_]
    if columns.categorical:
        onehot: OneHotEncoder = pre.named_transformers_["cat"].named_steps["onehot"]
        for name, cats in zip(columns.categorical, onehot.categories_):
            owners += [name] * len(cats)
    return owners


def fit(train: pd.DataFrame, validation: pd.DataFrame, columns: Columns, config: ScoringConfig) -> ScoringModel:
    """Fit on the training slice, calibrate on the validation slice (deterministic for a seed)."""
    x_train, y_train = train[list(columns.all)], train.label.astype(int).to_numpy()
    pipe = gradient_boosting(columns, config).fit(x_train, y_train)
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipe), method=config.calibration)
    calibrated.fit(validation[list(columns.all)], validation.label.astype(int).to_numpy())
    baseline = logistic_baseline(columns, config).fit(x_train, y_train)
    z = np.asarray(baseline.named_steps["features"].transform(x_train), dtype="float64")
    owners = owners_of(baseline, columns)
    if len(owners) != z.shape[1]:  # pragma: no cover - a change in scikit-learn's column layout
        raise RuntimeError(f"baseline columns: {z.shape[1]}, owners: {len(owners)}")
    return ScoringModel(calibrated, baseline, columns, owners, z.mean(axis=0), {})
