"""Erasure: forget one person everywhere their data went, and prove it without naming them.

A request names the subject by e-mail address or lead id. It comes from `crm-platform erase`
(a row of `pii.erasure_requests`: the clear identifier waits in the vault's schema, never in run
configuration or logs) or from an `erasure_requested` event (its e-mail already a keyed hash).

The subject is the person as the identity graph knows them:

1. seeds: the lead id; the vault's hashes of the address (any case and spacing) and the address's
   keyed hash; every lead whose events or source records carry that address;
2. the seeds' canonical leads (identity.lead_identity_map) and every record and source id of them,
   the browsers (user_id) seen on their events;
3. their events (by lead, canonical lead, browser without a lead, or the address's hash) and their
   quarantined records (whose redacted text names their ids or hashes).

A vault entry goes when only the subject's rows reference its hash (as retention decides; a
company's shared switchboard number stays for the others who use it); a name's term frequency in
the frozen identity model goes when no one else had it. Then every table of the warehouse, found by
listing them (so a table a later layer adds is covered too), loses the rows that hold one of the
subject's ids in an id column (`lead_id`, `*_lead_id`, `user_id`, `event_id`, `*_event_id`,
`source_system:source_id`, `pii_hash`) or one of their hashes or quoted ids in a text column (and in
the pii schema, their clear address or phone number). A second sweep must find nothing: it is the
proof, and a failure if not.

Models registered after the subject had labels are flagged in `ml.retraining_required` (the
training rows changed, so the next scoring run trains a new version). `governance.erasure_report`
has a row per request: its random id and the requester's reference, counts per table, the models
flagged, the landing files that hold the subject's records (the platform never edits landed
files: their owner purges them, and the ledger keeps them from being read again). Nothing in it
names or links to the subject.

DuckDB does one request in one transaction. ClickHouse has none: under the ingest writer lock (no
file lands meanwhile), derived tables go first and the request last, so a run cut short is redone
by the next one.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from crm_platform.governance.retention import hash_references, used_params
from crm_platform.identity import normalize
from crm_platform.ingest.sql_validation import pii_hash
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.tables import EVENTS, PII_VAULT, QUARANTINE, TableDef

log = logging.getLogger(__name__)

REQUESTS = TableDef("pii", "erasure_requests", (
    ("request_id", "string"), ("requested_at", "timestamp"), ("origin", "string"), ("reference", "string"),
    ("email", "string"), ("lead_id", "string"),
), order_by=("requested_at", "request_id"),
    description="Erasure requests waiting to be carried out, with the subject's clear identifier (so in the pii "
                "schema); each row goes when its request is done.")

REPORT = TableDef("governance", "erasure_report", (
    ("request_id", "string"), ("reference", "string"), ("origin", "string"), ("requested_at", "timestamp"),
    ("erased_at", "timestamp"), ("status", "string"), ("rows_deleted", "bigint"), ("tables", "json"),
    ("models_flagged", "string[]"), ("landing_files", "string[]"), ("verified", "boolean"),
), order_by=("erased_at", "request_id"), low_cardinality=("origin", "status"),
    description="One row per erasure carried out: rows deleted per table, models flagged for retraining, the "
                "landing files holding the subject's records; never the subject's ids, hashes or values.")

RETRAINING = TableDef("ml", "retraining_required", (
    ("model_version", "string"), ("flagged_at", "timestamp"), ("reason", "string"), ("request_id", "string"),
), order_by=("flagged_at", "model_version"),
    description="Models whose training rows included a person since erased: retrain before trusting them again.")

EVENT_TYPE = "erasure_requested"
LOCK = "ingest"  # the ingest's writer lock, as retention takes it
# Tables that hold no person's data and are written here.
SKIPPED = {("governance", "erasure_report"), ("ml", "retraining_required"), ("governance", "deletion_log"),
           ("governance", "tracking_plan")}
_TEXT_TYPES = ("VARCHAR", "JSON", "String")
NAME_FIELDS = {"attributes.first_name": ("first_name", normalize.given_name),
               "attributes.last_name": ("last_name", normalize.name)}
CLEAR_FIELDS = ("email", "phone")  # distinctive clear values looked for in the pii schema's texts


@dataclass(frozen=True)
class Request:
    request_id: str
    requested_at: datetime
    origin: str  # cli | event
    reference: str | None
    email: str | None = None
    lead_id: str | None = None
    email_hashes: tuple[str, ...] = ()
    event_id: str | None = None  # the erasure_requested event itself


@dataclass
class Subject:
    leads: set[str] = field(default_factory=set)  # record and canonical lead ids
    users: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)  # "source_system:source_id"
    hashes: set[str] = field(default_factory=set)  # referenced by the subject's rows only
    clear: set[str] = field(default_factory=set)  # their e-mail addresses and phone numbers
    landing_files: set[str] = field(default_factory=set)
    quarantined: set[str] = field(default_factory=set)  # "source_file:source_line:sha256"

    @property
    def empty(self) -> bool:
        return not (self.leads or self.users or self.events or self.sources or self.hashes)


@dataclass(frozen=True)
class ErasureResult:
    report: pa.Table  # this run's rows of governance.erasure_report

    @property
    def requests(self) -> int:
        return self.report.num_rows

    @property
    def rows_deleted(self) -> int:
        return sum(self.report.column("rows_deleted").to_pylist())

    @property
    def events_deleted(self) -> int:
        return sum(json.loads(t).get("core.events", 0) for t in self.report.column("tables").to_pylist())


def request_erasure(wh: Warehouse, *, email: str | None = None, lead_id: str | None = None,
                    reference: str | None = None, now: datetime | None = None) -> str:
    """Queue a request (the clear identifier waits in the pii schema); returns its random id."""
    email = (email or "").strip() or None
    lead_id = (lead_id or "").strip() or None
    if not (email or lead_id):
        raise ValueError("an erasure request needs an e-mail address or a lead id")
    wh.ensure_table(REQUESTS)
    request_id = str(uuid.uuid4())
    wh.insert_arrow("pii", "erasure_requests", pa.Table.from_pylist([{
        "request_id": request_id, "requested_at": _naive(now or datetime.now(UTC)), "origin": "cli",
        "reference": reference, "email": email, "lead_id": lead_id}], schema=_schema(REQUESTS)))
    return request_id


def pending_requests(wh: Warehouse, pii_key: bytes) -> list[Request]:
    """The queued requests and the erasure_requested events, oldest first."""
    requests = []
    if wh.table_exists("pii", "erasure_requests"):
        for rid, at, origin, ref, email, lead in wh.fetchall(
                f"select request_id, requested_at, origin, reference, email, lead_id from "
                f"{wh.table_name('pii', 'erasure_requests')} order by requested_at, request_id"):
            hashes = tuple(sorted({pii_hash(pii_key, email), pii_hash(pii_key, email.lower())})) if email else ()
            requests.append(Request(rid, at, origin, ref, email, lead, hashes))
    if wh.table_exists("core", "events"):
        for event_id, at, lead, email_hash, ref in wh.fetchall(
                f"select event_id, occurred_at, lead_id, attributes->>'email', attributes->>'reference' from "
                f"{wh.table_name('core', 'events')} where event_type = $t order by occurred_at, event_id", {"t": EVENT_TYPE}):
            requests.append(Request(str(uuid.uuid4()), at, "event", ref, None, lead,
                                    (email_hash,) if email_hash else (), event_id))
    return sorted(requests, key=lambda r: (r.requested_at, r.request_id))


def erase_pending(wh: Warehouse, pii_key: bytes, now: datetime | None = None) -> ErasureResult:
    """Carry out every pending request (module docstring); returns this run's report rows."""
    for table in (REQUESTS, REPORT, RETRAINING, EVENTS, QUARANTINE, PII_VAULT):
        wh.ensure_table(table)
    rows = []
    # One transaction per request where the engine has them and the vault shares the file (a DuckDB
    # transaction writes one file); otherwise the sweep's order makes a cut-short run redoable.
    atomic = wh.engine == "duckdb" and not getattr(wh, "pii_separate", False)
    for request in pending_requests(wh, pii_key):
        with wh.exclusive(LOCK), (wh.transaction() if atomic else nullcontext()):
            rows.append(_erase(wh, request, _naive(now or datetime.now(UTC))))
    return ErasureResult(pa.Table.from_pylist(rows, schema=_schema(REPORT)))


def _erase(wh: Warehouse, request: Request, now: datetime) -> dict:
    subject = resolve_subject(wh, request)
    tables: dict[str, int] = {}
    models = flag_models(wh, subject, request.request_id, now) if subject.leads else []
    if not subject.empty:
        tables = _sweep(wh, subject, delete=True)
    _forget_request(wh, request)
    if not subject.empty:
        left = {t: n for t, n in _sweep(wh, subject, delete=False).items() if n}
        if left:
            raise RuntimeError(f"erasure {request.request_id}: rows still referencing the subject after the sweep in "
                               f"{sorted(left)}: a writer added them meanwhile, or a table holds them in a form the "
                               "sweep does not know; the next run tries again")
    row = {"request_id": request.request_id, "reference": request.reference, "origin": request.origin,
           "requested_at": request.requested_at, "erased_at": now, "status": "erased" if tables else "not_found",
           "rows_deleted": sum(tables.values()), "tables": json.dumps(dict(sorted(tables.items()))),
           "models_flagged": models, "landing_files": sorted(subject.landing_files), "verified": True}
    wh.insert_arrow("governance", "erasure_report", pa.Table.from_pylist([row], schema=_schema(REPORT)),
                    dedup_token=f"erasure-{request.request_id}")
    log.info("erasure %s: %d rows deleted in %d tables, %d models flagged", request.request_id,
             row["rows_deleted"], len(tables), len(models))
    return row


def resolve_subject(wh: Warehouse, request: Request) -> Subject:
    """The subject's ids, hashes and clear values (module docstring, steps 1-3)."""
    t = wh.table_name
    s = Subject()
    email_hashes = set(request.email_hashes)
    if request.email:
        email_hashes |= {h for (h,) in wh.fetchall(
            f"select pii_hash from {t('pii', 'vault')} where field like '%email' and lower(trim(value)) = $e",
            {"e": request.email.strip().lower()})}
    seeds = {request.lead_id} if request.lead_id else set()
    carries_email = _matches(["attributes", "context"], _alternation(email_hashes)) if email_hashes else None
    if carries_email:
        seeds |= {lead for (lead,) in wh.fetchall(
            f"select distinct lead_id from {t('core', 'events')} where lead_id is not null and {carries_email[0]}",
            carries_email[1])}
    if request.email and wh.table_exists("pii", "source_records"):
        seeds |= {lead for (lead,) in wh.fetchall(
            f"select distinct lead_id from {t('pii', 'source_records')} where lead_id is not null and "
            "regexp_matches(coalesce(CAST(state AS VARCHAR), ''), $p)", {"p": "(?i)\"" + re.escape(request.email.strip()) + "\""})}
    if not seeds and not email_hashes:
        return s
    leads = set(seeds)
    if leads and wh.table_exists("identity", "lead_identity_map"):
        canonical = {c for (c,) in wh.fetchall(
            f"select distinct lead_id from {t('identity', 'lead_identity_map')} "
            "where list_contains($l, lead_id) or list_contains($l, record_lead_id)", {"l": sorted(leads)})}
        leads |= canonical
        for system, source_id, record in wh.fetchall(
                f"select source_system, source_id, record_lead_id from {t('identity', 'lead_identity_map')} "
                "where list_contains($c, lead_id)", {"c": sorted(canonical)}) if canonical else []:
            s.sources.add(f"{system}:{source_id}")
            if record:
                leads.add(record)
    if leads:
        leads |= {lead for (lead,) in wh.fetchall(
            f"select distinct lead_id from {t('core', 'events')} where list_contains($l, canonical_lead_id) "
            "and lead_id is not null", {"l": sorted(leads)})}
        # A browser is theirs when no one else's event carries it (a shared one stays with the others).
        s.users = {u for (u,) in wh.fetchall(
            f"select user_id from {t('core', 'events')} where user_id in (select user_id from {t('core', 'events')} "
            "where list_contains($l, lead_id)) group by user_id "
            "having sum(case when lead_id is not null and not list_contains($l, lead_id) then 1 else 0 end) = 0",
            {"l": sorted(leads)})}
        if wh.table_exists("pii", "source_records"):
            s.sources |= {f"{a}:{b}" for a, b in wh.fetchall(
                f"select distinct source_system, source_id from {t('pii', 'source_records')} where list_contains($l, lead_id)",
                {"l": sorted(leads)})}
    s.leads = leads

    event_pred, params = _subject_events(s, email_hashes, request.event_id)
    s.events = {e for (e,) in wh.fetchall(f"select event_id from {t('core', 'events')} where {event_pred}", params)}
    quarantine_pred, q_params = _subject_quarantine(s, email_hashes)
    params.update(q_params)
    files = (f"select distinct source_file from {t('core', 'events')} where {event_pred} and source_file is not null "
             f"union select distinct source_file from {t('core', 'quarantine')} where {quarantine_pred}")
    s.landing_files = {f for (f,) in wh.fetchall(files, used_params(files, params))}
    quarantined = (f"select source_file || ':' || CAST(source_line AS VARCHAR) || ':' || sha256 from "
                   f"{t('core', 'quarantine')} where {quarantine_pred}")
    s.quarantined = {k for (k,) in wh.fetchall(quarantined, used_params(quarantined, params)) if k}
    refs = f"select h from ({hash_references(wh, event_pred, quarantine_pred)}) as r where stays = 0"
    s.hashes = email_hashes | {h for (h,) in wh.fetchall(refs, used_params(refs, params))}
    if s.hashes:
        s.clear = {v.strip() for field_, v in wh.fetchall(
            f"select field, value from {t('pii', 'vault')} where list_contains($h, pii_hash)", {"h": sorted(s.hashes)})
            if v and any(field_.endswith(c) for c in CLEAR_FIELDS) and len(v.strip()) >= 5}
    return s


def _subject_events(s: Subject, email_hashes: set[str], request_event: str | None) -> tuple[str, dict]:
    terms, params = [], {}
    if s.leads:
        terms += ["list_contains($s_leads, lead_id)", "list_contains($s_leads, canonical_lead_id)"]
        params["s_leads"] = sorted(s.leads)
    if s.users:
        terms.append("(lead_id is null and list_contains($s_users, user_id))")
        params["s_users"] = sorted(s.users)
    if email_hashes:
        sql, p = _matches(["attributes", "context"], _alternation(email_hashes), "s_email")
        terms.append(sql)
        params.update(p)
    if request_event:
        terms.append("event_id = $s_request")
        params["s_request"] = request_event
    return "(" + (" or ".join(terms) or "false") + ")", params


def _subject_quarantine(s: Subject, email_hashes: set[str]) -> tuple[str, dict]:
    pattern = _alternation(email_hashes | {_quoted(i) for i in s.leads | s.users})
    if not pattern:
        return "(false)", {}
    return _matches(["raw_record"], pattern, "s_quarantine")


def flag_models(wh: Warehouse, subject: Subject, request_id: str, now: datetime) -> list[str]:
    """Registered models trained once the subject had labelled rows: flagged for retraining."""
    if not (wh.table_exists("ml", "model_registry") and wh.table_exists("features", "lead_labels")):
        return []
    t = wh.table_name
    models = [m for (m,) in wh.fetchall(
        f"select model_version from {t('ml', 'model_registry')} where trained_at >= (select min(as_of) from "
        f"{t('features', 'lead_labels')} where list_contains($l, lead_id)) order by trained_at, model_version",
        {"l": sorted(subject.leads)})]
    if models:
        wh.insert_arrow("ml", "retraining_required", pa.Table.from_pylist(
            [{"model_version": m, "flagged_at": now, "reason": "trained on a person since erased",
              "request_id": request_id} for m in models], schema=_schema(RETRAINING)),
            dedup_token=f"retrain-{request_id}")
    return models


def _sweep(wh: Warehouse, s: Subject, *, delete: bool) -> dict[str, int]:
    """Rows referencing the subject per table; deleted with `delete`, else only counted. The vault,
    source records and the event log go after everything derived from them."""
    tables = wh.list_tables()
    names = sorted(k for k in tables if k not in SKIPPED)
    last = [("pii", "match_term_frequencies"), ("core", "quarantine"), ("pii", "quarantine_payloads"),
            ("pii", "vault"), ("pii", "source_records"), ("core", "events"), ("identity", "lead_identity_map")]
    names = [n for n in names if n not in last] + [n for n in last if n in tables]
    found: dict[str, int] = {}
    for schema, table in names:
        if (schema, table) == ("pii", "match_term_frequencies"):
            n = _term_frequencies(wh, s, delete)
        else:
            predicate = _predicate(schema, tables[(schema, table)], s)
            if predicate is None:
                continue
            sql, params = predicate
            n = (wh.delete_rows(schema, table, sql, params) if delete else
                 wh.fetchall(f"select count(*) from {wh.table_name(schema, table)} where {sql}", params)[0][0])
        if n:
            found[f"{schema}.{table}"] = int(n)
    return found


def _predicate(schema: str, columns: list[tuple[str, str]], s: Subject) -> tuple[str, dict] | None:
    """True for a row holding one of the subject's ids, hashes or (pii schema) clear values."""
    names = {c for c, _ in columns}
    terms, params = [], {}

    def id_term(column: str, values: set[str], key: str) -> None:
        if values:
            terms.append(f'list_contains(${key}, "{column}")')
            params[key] = sorted(values)

    id_columns = set()
    for i, (column, kind) in enumerate(columns):
        if column == "lead_id" or column.endswith("_lead_id"):
            id_term(column, s.leads, f"p_leads_{i}")
        elif column == "user_id" or column.endswith("_user_id"):
            id_term(column, s.users, f"p_users_{i}")
        elif column == "event_id" or column.endswith("_event_id"):
            id_term(column, s.events, f"p_events_{i}")
        elif column == "pii_hash":
            id_term(column, s.hashes, f"p_hashes_{i}")
        else:
            continue
        id_columns.add(column)
    if {"source_file", "source_line", "sha256"} <= names and s.quarantined:  # a quarantined record, clear or redacted
        terms.append("list_contains($p_quarantined, source_file || ':' || CAST(source_line AS VARCHAR) || ':' || sha256)")
        params["p_quarantined"] = sorted(s.quarantined)
    if {"source_system", "source_id"} <= names and s.sources:
        terms.append("list_contains($p_sources, source_system || ':' || source_id)")
        params["p_sources"] = sorted(s.sources)
        id_columns |= {"source_system", "source_id"}
    pattern = _alternation(s.hashes | {_quoted(v) for v in s.leads | s.users | s.events})
    clear = ("(?i)" + "|".join(re.escape(v) for v in sorted(s.clear))) if schema == "pii" and s.clear else None
    text = [(c, k) for c, k in columns if c not in id_columns and _is_text(k)]
    for i, (column, kind) in enumerate(text):
        value = (f'array_to_string("{column}", \' \')' if _is_array(kind) else f'CAST("{column}" AS VARCHAR)')
        for key, p in (("p_text", pattern), ("p_clear", clear)):
            if p:
                terms.append(f"regexp_matches(coalesce({value}, ''), ${key})")
                params[key] = p
    if not terms:
        return None
    return "(" + " or ".join(terms) + ")", params


def _term_frequencies(wh: Warehouse, s: Subject, delete: bool) -> int:
    """The frozen identity model's name frequencies that only the subject's records gave: a unique
    surname is as telling as the person's address. A name others share stays (it names no one)."""
    if not s.hashes:
        return 0
    t = wh.table_name
    names: dict[str, set[str]] = {}
    for field_, value in wh.fetchall(f"select field, value from {t('pii', 'vault')} where list_contains($h, pii_hash)",
                                     {"h": sorted(s.hashes)}):
        if field_ in NAME_FIELDS and value:
            column, norm = NAME_FIELDS[field_]
            if (v := norm(value)):
                names.setdefault(column, set()).add(v)
    if not delete:  # after the sweep the vault no longer names them; what is left was shared
        return 0
    if not names or not wh.table_exists("identity", "match_models"):
        return 0
    records = max(1, len(s.leads))
    total = 0
    for version, trained in wh.fetchall(f"select model_version, trained_records from {t('identity', 'match_models')}"):
        for column, values in names.items():
            # tf x records trained on = the records that had the name: no more than the subject's own.
            total += wh.delete_rows(
                "pii", "match_term_frequencies",
                "model_version = $m and column_name = $c and list_contains($v, value) and tf * $n < $k + 0.5",
                {"m": version, "c": column, "v": sorted(values), "n": float(trained), "k": records})
    return total


def _forget_request(wh: Warehouse, request: Request) -> None:
    if request.origin == "cli":
        wh.delete_rows("pii", "erasure_requests", "request_id = $r", {"r": request.request_id})
    elif request.event_id:
        wh.delete_rows("core", "events", "event_id = $e", {"e": request.event_id})


def _matches(columns: list[str], pattern: str, key: str = "m") -> tuple[str, dict]:
    text = " || ' ' || ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in columns)
    return f"regexp_matches({text}, ${key})", {key: pattern}


def _alternation(values: set[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(values))


def _quoted(value: str) -> str:
    return '"' + value + '"'


def _is_text(kind: str) -> bool:
    return any(t in kind for t in _TEXT_TYPES)


def _is_array(kind: str) -> bool:
    return kind.endswith("[]") or kind.startswith("Array(")


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _schema(table: TableDef) -> pa.Schema:
    types = {"string": pa.string(), "timestamp": pa.timestamp("us"), "bigint": pa.int64(), "json": pa.string(),
             "string[]": pa.list_(pa.string()), "boolean": pa.bool_()}
    return pa.schema([(c, types[k]) for c, k in table.columns])

