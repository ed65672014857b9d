"""Probabilistic edges: Splink's Fellegi-Sunter model on names, company, address, phone and e-mail
domain, EM-trained, term-frequency adjusted, scored within blocking rules (DuckDB backend, in
memory, inside the identity step: the clear normal forms never reach the warehouse).

A model is its Splink settings (m and u per comparison level, the prior) plus the term frequencies
it was trained with, frozen: a pair scores the same whatever arrives later, so comparing only new
and changed records each night (`score(..., changed=...)`) gives what a full rebuild gives.

Larger than one machine: the same settings dict runs on Splink's Spark backend
(`splink.SparkAPI(spark_session=...)` instead of `DuckDBAPI()`), records registered from a Spark
DataFrame; see README "Identity at scale".
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from crm_platform.identity.records import arrow_strings

COLUMNS = ["unique_id", "first_name", "given_name", "last_name", "company", "street", "city", "postal_code",
           "phone", "email_domain", "email"]
TF_COLUMNS = ("first_name", "last_name", "company", "city")
# Candidate pairs: each rule a cheap equi-join; a pair any rule finds is scored once. Every key is
# (nearly) as specific as a company, a phone or a postal code, so blocks grow slowly with the records
# (name + city would not: a city holds ever more Smiths; it found no pair the others miss on the
# generated data). The company rules also take the other name's initial: a large company holds ever
# more people of one surname (at 1M leads, last name + company alone made 114M candidate pairs, 80 x
# the 100k figure; with the initial 13M), and a slip of the keyboard keeps the first letter.
BLOCKING_RULES = (("last_name", "company", "substr(given_name, 1, 1)"), ("phone",),
                  ("given_name", "last_name", "postal_code"), ("first_name", "company", "substr(last_name, 1, 1)"))
# EM needs blocks rich in matches; each trains the comparisons it does not block on. Blocks such as
# family name + company would teach it "colleagues" (same address, domain and surname) as matches.
TRAINING_BLOCKS = (("email",), ("phone",))
EM_MAX_PAIRS = 2e6
SPLINK_MEMORY_LIMIT = "1GB"
U_MAX_PAIRS = 5e6

for _name in ("splink", "splink.internals"):
    logging.getLogger(_name).setLevel(logging.ERROR)  # "m not trained" for the levels given priors


@dataclass(frozen=True)
class MatchModel:
    settings: dict  # Splink's model JSON
    term_frequencies: dict[str, pd.DataFrame]  # column -> (column, tf_column)
    trained_records: int
    version: str

    @staticmethod
    def digest(settings: dict, term_frequencies: dict[str, pd.DataFrame]) -> str:
        h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        for col in sorted(term_frequencies):
            h.update(col.encode())
            h.update(pd.util.hash_pandas_object(term_frequencies[col], index=False).values.tobytes())
        return h.hexdigest()[:16]

    def parameters(self) -> dict:
        """What the run records: the prior and each level's m and u (no values, no PII)."""
        out = {"probability_two_random_records_match": self.settings.get("probability_two_random_records_match"),
               "comparisons": {}}
        for c in self.settings["comparisons"]:
            out["comparisons"][c["output_column_name"]] = [
                {"level": lvl.get("label_for_charts"), "m": lvl.get("m_probability"), "u": lvl.get("u_probability"),
                 "tf": bool(lvl.get("tf_adjustment_column"))}
                for lvl in c["comparison_levels"] if not lvl.get("is_null_level")]
        return out


def settings() -> SettingsCreator:
    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name").configure(tf_adjustment_column="first_name"),
            cll.ExactMatchLevel("given_name").configure(label_for_charts="nickname of the same name"),
            cll.JaroWinklerLevel("first_name", 0.88),
            cll.ElseLevel(),
        ],
    )
    company = cl.CustomComparison(
        output_column_name="company",
        comparison_levels=[
            cll.NullLevel("company"),
            cll.ExactMatchLevel("company").configure(tf_adjustment_column="company"),
            # Rarely seen in training (a company is spelled alike once normalized): priors, not learned.
            cll.JaroWinklerLevel("company", 0.95).configure(m_probability=0.02),
            cll.JaroWinklerLevel("company", 0.85).configure(m_probability=0.02),
            cll.ElseLevel().configure(m_probability=0.05),
        ],
    )
    # The address, then its domain: a different mailbox at the same domain is evidence against (one
    # person has one work address; colleagues share the domain). The mailbox name is left out: it is
    # made of the person's name, which the name comparisons already count.
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email"),
            # Not observable in the training blocks (e-mail is one of them): set, not learned.
            cll.ExactMatchLevel("email_domain").configure(label_for_charts="same domain, other mailbox",
                                                          m_probability=0.002),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            first_name,
            cl.JaroWinklerAtThresholds("last_name", [0.95, 0.88]).configure(term_frequency_adjustments=True),
            company,
            cl.LevenshteinAtThresholds("street", [2]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postal_code"),
            cl.ExactMatch("phone"),
            email,
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in BLOCKING_RULES],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,  # each comparison's match weight: the evidence
    )


def _frame(records: pd.DataFrame) -> pd.DataFrame:
    return records.rename(columns={"lead_id": "unique_id"})[COLUMNS].sort_values("unique_id").reset_index(drop=True)


@contextmanager
def _database() -> Iterator[duckdb.DuckDBPyConnection]:
    """Splink's own DuckDB: a scratch file with a memory limit, so blocked pairs and comparison
    tables spill to disk instead of growing with the records (a million leads fit in a few GiB)."""
    with tempfile.TemporaryDirectory(prefix="crm-identity-splink-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "splink.duckdb"), config={
            "memory_limit": SPLINK_MEMORY_LIMIT, "temp_directory": str(Path(tmp) / "spill"),
            "preserve_insertion_order": False})
        try:
            yield con
        finally:
            con.close()


def train(records: pd.DataFrame, seed: int) -> MatchModel:
    """EM-train a model on these records: u from random pairs, the prior from e-mail equality
    (taken as 80% of true matches), m from the training blocks."""
    with _database() as con:
        return _train(DuckDBAPI(connection=con), records, seed)


def _train(db: DuckDBAPI, records: pd.DataFrame, seed: int) -> MatchModel:
    linker = Linker(db.register(_frame(records), table_name="records"), settings())
    linker.training.estimate_probability_two_random_records_match([block_on("email")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=seed)
    for cols in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols), max_pairs=EM_MAX_PAIRS)
    tfs = {c: linker.table_management.compute_tf_table(c).as_pandas_dataframe()
           .sort_values(c).reset_index(drop=True) for c in TF_COLUMNS}
    model = _canonical(linker.misc.save_model_to_json())
    return MatchModel(model, tfs, len(records), MatchModel.digest(model, tfs))


def _canonical(value):
    """The model without its run-specific parts: no random linker id, and probabilities rounded to
    10 significant digits (DuckDB's parallel sums differ in the last bits from run to run), so the
    same records always train the same model, byte for byte."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k != "linker_uid"}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.10g}")
    return value


def score(model: MatchModel, records: pd.DataFrame, keep_from: float,
          changed: set[str] | None = None) -> pd.DataFrame:
    """Scored candidate pairs (left, right, match_probability, match_weight, levels JSON) with a
    probability of at least `keep_from`: all pairs the blocking rules find, or (with `changed`) only
    those with a changed record in them."""
    with _database() as con:
        return _score(con, model, records, keep_from, changed)


def _score(con: duckdb.DuckDBPyConnection, model: MatchModel, records: pd.DataFrame, keep_from: float,
           changed: set[str] | None) -> pd.DataFrame:
    db = DuckDBAPI(connection=con)
    frame = _frame(records)
    data = db.register(frame, table_name="records")
    linker = Linker(data, model.settings)
    for col, tf in model.term_frequencies.items():
        linker.table_management.register_term_frequency_lookup(db.register(tf, table_name=f"tf_lookup_{col}"), col)
    if changed is None:
        parts = [linker.inference.predict_within(data, threshold_match_probability=keep_from)]
    else:
        is_new = frame["unique_id"].isin(changed)
        new = db.register(frame[is_new].reset_index(drop=True), table_name="changed_records")
        old = db.register(frame[~is_new].reset_index(drop=True), table_name="unchanged_records")
        parts = [linker.inference.predict_within(new, threshold_match_probability=keep_from)]
        if (~is_new).any() and is_new.any():
            parts.append(linker.inference.predict_between(new, old, threshold_match_probability=keep_from))
    return _pairs(con, [p.physical_name for p in parts])


def _pairs(con: duckdb.DuckDBPyConnection, tables: list[str]) -> pd.DataFrame:
    """Pairs with each comparison's match weight as the evidence (no values), in the order of
    (left, right), each once. Built in Splink's DuckDB: its predictions carry every intermediate
    column (gammas, Bayes factors, term-frequency adjustments), which brought to pandas whole, with
    a Python dict of levels per pair, took 5 GiB at 1M leads."""
    names = [d[0] for d in con.execute(f"SELECT * FROM {tables[0]} LIMIT 0").description]
    weights = sorted(c for c in names if c.startswith("mw_") and not c.startswith("mw_tf_adj_"))
    # json.dumps(..., sort_keys=True) of the weights rounded to 3 places, byte for byte.
    levels = " || ', ' || ".join(f"'{json.dumps(c[len('mw_'):])}: ' || coalesce(round({c}, 3)::VARCHAR, 'NaN')"
                                 for c in weights)
    union = " UNION ALL ".join(f"SELECT * FROM {t}" for t in tables)
    table = con.sql(f"""
        SELECT least(unique_id_l, unique_id_r) AS "left", greatest(unique_id_l, unique_id_r) AS "right",
               match_probability::DOUBLE AS match_probability, match_weight::DOUBLE AS match_weight,
               '{{' || {levels or "''"} || '}}' AS levels
        FROM ({union})
        QUALIFY row_number() OVER (PARTITION BY "left", "right" ORDER BY match_probability DESC) = 1
        ORDER BY "left", "right"
    """).to_arrow_table()
    return pd.DataFrame({c: table.column(c).to_pandas() if c.startswith("match_") else
                         arrow_strings(table.column(c).combine_chunks()) for c in table.column_names})
