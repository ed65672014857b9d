"""The lead records and contact values in normal form, kept between runs: a run normalizes again
only the records whose lead events changed since the last one.

Reading every record's clear values back from the vault and normalizing them was the largest part
of an incremental run (about 30 s of 77 at 100k leads), though a night changes a few records. The
normal form is kept in `pii.identity_normal_records` and `pii.identity_normal_contacts` (normalized
names and addresses are PII, so in the pii schema, which erasure sweeps like every table by lead id)
with each record's version, `inputs.lead_versions`: the count of its lead events and the newest
`ingested_at`. A record whose version differs is read and normalized again, one that no longer has a
lead event (retention, erasure) leaves, the rest is read as kept. The result equals normalizing
everything (tested); `full=True`, a missing or older table, or a run where most records changed
normalizes everything.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from crm_platform.identity import inputs
from crm_platform.identity.records import (
    COLUMNS,
    PhoneParses,
    arrow_strings,
    is_in,
    normalized_contacts,
    normalized_records,
)
from crm_platform.warehouse import Warehouse

RECORDS, CONTACTS = ("pii", "identity_normal_records"), ("pii", "identity_normal_contacts")
VERSION = ["lead_events", "last_ingested_at"]
RECORD_COLUMNS = ["lead_id", "first_seen", *COLUMNS, "email_domain", "phone"]
CONTACT_COLUMNS = ["lead_id", "field", "key"]
# Above this share of changed records, one pass over everything is cheaper than joining their ids.
MAX_CHANGED_SHARE = 0.25


@dataclass
class NormalForm:
    records: pd.DataFrame  # RECORD_COLUMNS, one row per lead record, sorted by lead_id
    contacts: pd.DataFrame  # CONTACT_COLUMNS, sorted
    normalized: int  # records read and normalized in this run


def normal_form(wh: Warehouse, full: bool = False) -> NormalForm:
    versions = inputs.lead_versions(wh).to_pandas()
    kept = None if full else _read_kept(wh)
    if kept is None:
        changed = None
    else:
        kept_records, kept_contacts = kept
        known = kept_records[["lead_id", *VERSION]].merge(versions, on="lead_id", how="right",
                                                          suffixes=("_kept", ""), indicator=True)
        same = (known["_merge"] == "both") & (known["lead_events_kept"] == known["lead_events"]) & (
            known["last_ingested_at_kept"] == known["last_ingested_at"])
        changed = known.loc[~same, "lead_id"].tolist()
        if len(changed) > MAX_CHANGED_SHARE * max(len(versions), 1):
            changed = None
    if changed is None:  # everything
        records, contacts = _sorted(*_normalize(wh, None))
    else:
        stay = pa.array(known.loc[same, "lead_id"].to_numpy(dtype=object), pa.string())
        if not changed and len(stay) == len(kept_records):
            return NormalForm(_records_only(kept_records), kept_contacts, 0)
        new_records, new_contacts = _normalize(wh, changed)
        records = pd.concat([_records_only(kept_records[is_in(kept_records["lead_id"], stay)]), new_records],
                            ignore_index=True)
        contacts = pd.concat([kept_contacts[is_in(kept_contacts["lead_id"], stay)], new_contacts], ignore_index=True)
        records, contacts = _sorted(records, contacts)
    _keep(wh, records.merge(versions, on="lead_id", how="left"), contacts)
    return NormalForm(records, contacts, len(versions) if changed is None else len(changed))


def _normalize(wh: Warehouse, leads: list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    phones = PhoneParses()
    records = normalized_records(inputs.lead_records(wh, leads), phones)
    regions = pd.Series(records["country"].to_numpy(dtype=object, na_value=None), index=records["lead_id"])
    return records, normalized_contacts(inputs.contact_values(wh, leads), regions, phones)


def _sorted(records: pd.DataFrame, contacts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One order whatever the path (the rules' output order follows the input's)."""
    return (records.sort_values("lead_id", kind="stable").reset_index(drop=True)[RECORD_COLUMNS],
            contacts.sort_values(CONTACT_COLUMNS, kind="stable").reset_index(drop=True)[CONTACT_COLUMNS])


def _records_only(records: pd.DataFrame) -> pd.DataFrame:
    return records[RECORD_COLUMNS].reset_index(drop=True)


def _read_kept(wh: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The kept normal form, or None when there is none of this release's shape."""
    if not (wh.table_exists(*RECORDS) and wh.table_exists(*CONTACTS)):
        return None
    names = wh.fetch_arrow(f"SELECT * FROM {wh.table_name(*RECORDS)} LIMIT 0").column_names
    if not set(names).issuperset(RECORD_COLUMNS + VERSION):
        return None
    records = inputs.naive_utc(wh.fetch_arrow(
        f"SELECT {', '.join(RECORD_COLUMNS + VERSION)} FROM {wh.table_name(*RECORDS)} ORDER BY lead_id"))
    contacts = wh.fetch_arrow(f"SELECT {', '.join(CONTACT_COLUMNS)} FROM {wh.table_name(*CONTACTS)} "
                              f"ORDER BY {', '.join(CONTACT_COLUMNS)}")
    return _frame(records, {"first_seen", *VERSION}), _frame(contacts, set())


def _frame(table: pa.Table, typed: set[str]) -> pd.DataFrame:
    """As the normalizing path holds it: Arrow-backed strings (`records.arrow_strings`)."""
    return pd.DataFrame({c: table.column(c).to_pandas() if c in typed else arrow_strings(table.column(c).combine_chunks())
                         for c in table.column_names})


def _keep(wh: Warehouse, records: pd.DataFrame, contacts: pd.DataFrame) -> None:
    s, ts, i = pa.string(), pa.timestamp("us"), pa.int64()
    record_schema = pa.schema([(c, ts if c in ("first_seen", "last_ingested_at") else i if c == "lead_events" else s)
                               for c in RECORD_COLUMNS + VERSION])
    wh.replace_table(*RECORDS, _arrow(records, record_schema))
    wh.replace_table(*CONTACTS, _arrow(contacts, pa.schema([(c, s) for c in CONTACT_COLUMNS])))


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: pa.array(frame[f.name].to_numpy(dtype=object, na_value=None)
                                      if pa.types.is_string(f.type) else frame[f.name], f.type, from_pandas=True)
                     for f in schema}, schema=schema)
