"""The model registry: `ml.model_registry` (CONTRACT §6) and the artifacts under
`$CRM_DATA_DIR/models/<model_version>/`.

An artifact is a skops file (no pickle: loading runs no code of the file's choosing) holding plain
containers and scikit-learn objects, plus `model.sha256` beside it. It is loaded only after its
sha256 equals the registry's `artifact_sha256` (the registry is the reference; the file beside it is
for people), and only with the types skops reports untrusted coming from scikit-learn, NumPy, SciPy
or `functools.partial`. `artifact_path` is relative to the data directory, so a data
directory moved elsewhere keeps its models.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import skops.io as sio

from crm_platform.scoring.dataset import Columns
from crm_platform.scoring.model import ScoringModel
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.tables import TableDef

SCHEMA = "ml"
ARTIFACT = "model.skops"
FORMAT = "crm-scoring-1"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")
TRUSTED_NAMES = ("functools.partial",)  # scikit-learn keeps partial(check_array, ...) in its estimators

REGISTRY = TableDef(SCHEMA, "model_registry", (
    ("model_version", "string"), ("trained_at", "timestamp"), ("feature_version", "string"),
    ("label_version", "string"), ("train_rows", "bigint"), ("metrics", "json"), ("artifact_path", "string"),
    ("artifact_sha256", "string"), ("status", "string"), ("parameters", "json"), ("data_fingerprint", "string"),
), order_by=("trained_at", "model_version"), low_cardinality=("feature_version", "label_version", "status"),
    description="Every trained model: versions, metrics with intervals, artifact and its sha256, promoted or refused.")
PROMOTED, REFUSED = "promoted", "refused"


class ArtifactError(Exception):
    """An artifact that is missing, altered or of an unexpected shape: never loaded."""


@dataclass(frozen=True)
class RegisteredModel:
    model_version: str
    trained_at: datetime
    feature_version: str
    label_version: str
    train_rows: int
    metrics: dict
    artifact_path: str
    artifact_sha256: str
    status: str
    parameters: dict
    data_fingerprint: str


def json_safe(value):
    """NaN and infinities as null (JSON has neither), NumPy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def model_version(feature_version: str, label_version: str, data_fingerprint: str, parameters: str) -> str:
    doc = json.dumps({"feature_version": feature_version, "label_version": label_version,
                      "data": data_fingerprint, "parameters": parameters, "format": FORMAT}, sort_keys=True)
    return "m" + hashlib.sha256(doc.encode()).hexdigest()[:16]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_artifact(models_dir: Path, version: str, model: ScoringModel) -> tuple[str, str]:
    """Write the artifact (whole or not at all: written aside, then renamed) and its sha256 file.
    Returns (artifact_path relative to the data directory, sha256)."""
    target = models_dir / version
    target.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "model": model.model, "baseline": model.baseline, "columns": model.columns.to_dict(),
           "owners": list(model.owners), "means": np.asarray(model.means, dtype="float64"),
           "drift_reference": json.dumps(model.drift_reference, sort_keys=True)}
    tmp = target / f".{ARTIFACT}.part"
    sio.dump(doc, tmp)
    digest = sha256_of(tmp)
    os.replace(tmp, target / ARTIFACT)
    (target / "model.sha256").write_text(f"{digest}  {ARTIFACT}\n", encoding="utf-8")
    return f"{models_dir.name}/{version}/{ARTIFACT}", digest


def load_artifact(data_dir: Path, entry: RegisteredModel) -> ScoringModel:
    """The registered model, after its file's sha256 equals the registry's."""
    path = data_dir / entry.artifact_path
    if not path.is_file():
        raise ArtifactError(f"model {entry.model_version}: artifact {path} is missing")
    actual = sha256_of(path)
    if actual != entry.artifact_sha256:
        raise ArtifactError(f"model {entry.model_version}: artifact {path} has sha256 {actual}, the registry says "
                            f"{entry.artifact_sha256}: refusing to load an altered artifact")
    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES) and t not in TRUSTED_NAMES]
    if foreign:
        raise ArtifactError(f"model {entry.model_version}: artifact {path} holds unexpected types {foreign}")
    doc = sio.load(path, trusted=untrusted)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(f"model {entry.model_version}: artifact {path} is not a {FORMAT} artifact")
    columns = Columns(tuple(doc["columns"]["numeric"]), tuple(doc["columns"]["categorical"]))
    return ScoringModel(doc["model"], doc["baseline"], columns, list(doc["owners"]), np.asarray(doc["means"]),
                        json.loads(doc["drift_reference"]))


def entries(wh: Warehouse) -> list[RegisteredModel]:
    """Every registered model, oldest first."""
    if not wh.table_exists(SCHEMA, REGISTRY.name):
        return []
    cols = ", ".join(f'"{c}"' for c in REGISTRY.column_names)
    rows = wh.fetch_arrow(f"SELECT {cols} FROM {wh.table_name(SCHEMA, REGISTRY.name)} "
                          "ORDER BY trained_at, model_version").to_pylist()
    out = []
    for r in rows:
        r["metrics"] = json.loads(r["metrics"]) if r["metrics"] else {}
        r["parameters"] = json.loads(r["parameters"]) if r["parameters"] else {}
        r["train_rows"] = int(r["train_rows"])
        out.append(RegisteredModel(**r))
    return out


def find(wh: Warehouse, version: str) -> RegisteredModel | None:
    return next((e for e in entries(wh) if e.model_version == version), None)


def current(wh: Warehouse) -> RegisteredModel | None:
    """The model in use: the latest promoted one."""
    promoted = [e for e in entries(wh) if e.status == PROMOTED]
    return promoted[-1] if promoted else None


def register(wh: Warehouse, entry: RegisteredModel) -> None:
    wh.ensure_table(REGISTRY)
    row = {**entry.__dict__, "metrics": json.dumps(json_safe(entry.metrics), sort_keys=True, allow_nan=False),
           "parameters": json.dumps(entry.parameters, sort_keys=True)}
    types = {"string": pa.string(), "timestamp": pa.timestamp("us"), "bigint": pa.int64(), "json": pa.string()}
    schema = pa.schema([(c, types[t]) for c, t in REGISTRY.columns])
    wh.insert_arrow(SCHEMA, REGISTRY.name, pa.Table.from_pylist([row], schema=schema), dedup_token=entry.model_version)
