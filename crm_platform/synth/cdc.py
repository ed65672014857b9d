"""Debezium PostgreSQL change events for the operational CRM's `public.leads` and `public.opportunities`.

The connector is deployed some way into the period: its initial snapshot (op r) holds the rows of
that moment, live changes (c/u/d, a tombstone after each delete) follow, and a second snapshot is
taken later after an offset reset. Messages are spooled per day with a time key and sorted when the
day's file is written, then perturbed the way at-least-once delivery does (a few duplicates, a few
neighbours swapped). `leads` has REPLICA IDENTITY FULL (updates carry `before`); `opportunities`
the default (no `before` on updates).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .clock import DAY, HOUR, date_text
from .funnel import Journey, LeadRec, Opp
from .rand import Draws
from .sinks import Appender, json_encoder

VERSION = "2.7.3.Final"
SERVER = "crmdb"
LEAD_COLS = ("id", "email", "first_name", "last_name", "phone", "company", "street", "city", "postal_code", "state",
             "country", "stage", "lead_source", "owner_id", "merged_into_id", "created_at", "updated_at")
OPP_COLS = ("id", "lead_id", "name", "amount", "currency", "stage", "created_at", "closed_at")
_TYPES = {  # column -> (Connect type, optional); everything else is an optional string
    "id": ("int64", False), "owner_id": ("int64", True), "merged_into_id": ("int64", True),
    "lead_id": ("int64", False), "amount": ("double", True), "created_at": ("int64", False),
    "updated_at": ("int64", False), "closed_at": ("int64", True),
}
_dumps = json_encoder(",", ":")
DUP_RATE = 0.01
SWAP_RATE = 0.01
BLOCK = 1000  # messages per write: wrapped ones are ~3 KB, and up to 16 writes wait in the queue


def _field(name: str) -> dict:
    typ, optional = _TYPES.get(name, ("string", True))
    f = {"type": typ, "optional": optional}
    if name.endswith("_at"):
        f.update(name="io.debezium.time.MicroTimestamp", version=1)
    if name == "id":
        f["default"] = 0
    f["field"] = name
    return f


def schema_block(table: str, cols) -> dict:
    """The schema half of a Debezium JsonConverter message (schemas.enable=true)."""
    value = {"type": "struct", "fields": [_field(c) for c in cols], "optional": True,
             "name": f"{SERVER}.public.{table}.Value"}
    source = {"type": "struct", "fields": [
        {"type": "string", "optional": False, "field": "version"},
        {"type": "string", "optional": False, "field": "connector"},
        {"type": "string", "optional": False, "field": "name"}, {"type": "int64", "optional": False, "field": "ts_ms"},
        {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
         "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
        {"type": "string", "optional": False, "field": "db"},
        {"type": "string", "optional": True, "field": "sequence"},
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "txId"}, {"type": "int64", "optional": True, "field": "lsn"},
        {"type": "int64", "optional": True, "field": "xmin"}],
        "optional": False, "name": "io.debezium.connector.postgresql.Source", "field": "source"}
    return {"type": "struct", "fields": [
        dict(value, field="before"), dict(value, field="after"), source,
        {"type": "string", "optional": False, "field": "op"}, {"type": "int64", "optional": True, "field": "ts_ms"},
        {"type": "struct", "fields": [{"type": "string", "optional": False, "field": "id"},
                                      {"type": "int64", "optional": False, "field": "total_order"},
                                      {"type": "int64", "optional": False, "field": "data_collection_order"}],
         "optional": True, "name": "event.block", "version": 1, "field": "transaction"}],
        "optional": False, "name": f"{SERVER}.public.{table}.Envelope", "version": 1}


_SCHEMA_TEXT = {t: _dumps(schema_block(t, cols)) for t, cols in (("leads", LEAD_COLS), ("opportunities", OPP_COLS))}


class CdcWriter:
    def __init__(self, root: Path, period, spool: Path, d: Draws):
        self.root, self.period, self.spool = root, period, spool
        start, days = period.start, period.days
        # Connector deployed on day ~10% of the period; offsets reset on day ~70% (a second snapshot).
        self.snapshots = (start + max(1, days // 10) * DAY + 2 * HOUR, start + int(days * 0.7) * DAY + 3 * HOUR)
        self.first = self.snapshots[0]
        self.base_us = start * 1_000_000
        self._snap_rows: dict[tuple[str, int], int] = {}
        self._last_snap_row: dict[tuple[str, int], tuple] = {}
        spool.mkdir(parents=True, exist_ok=True)
        self._buf: dict[str, list[str]] = {}
        self.d = d

    # ---- message construction --------------------------------------------------------------------
    def _lsn(self, ts_us: int, key: int) -> int:
        return 0x2000000 + (ts_us - self.base_us) * 4 + key % 4

    def _payload(self, table, op, before, after, ts_us: int, key: int, snapshot: str = "false") -> str:
        lsn = self._lsn(ts_us, key)
        src = {"version": VERSION, "connector": "postgresql", "name": SERVER, "ts_ms": ts_us // 1000,
               "snapshot": snapshot, "db": "crm", "sequence": f'["{max(lsn - 4096, 0)}","{lsn}"]', "schema": "public",
               "table": table, "txId": 700000 + (ts_us - self.base_us) // 5_000_000 + key % 7, "lsn": lsn, "xmin": None}
        return _dumps({"before": before, "after": after, "source": src, "op": op,
                       "ts_ms": ts_us // 1000 + 40 + key % 900, "transaction": None})

    def _put(self, kind: str, table: str, ts_us: int, key: int, seq: int, payload: str) -> None:
        day = (ts_us // 1_000_000 - self.period.start) // DAY
        self._buf.setdefault(f"{table}.{day:05d}.{kind}", []).append(f"{ts_us:017d}{key:012d}{seq:03d}\t{payload}\n")

    # ---- rows --------------------------------------------------------------------------------------
    @staticmethod
    def _lead_row(lead: LeadRec) -> dict:
        f = lead.fields
        us = lead.created * 1_000_000 + lead.cdc_id % 997
        return {"id": lead.cdc_id, "email": f["email"], "first_name": f["first_name"], "last_name": f["last_name"],
                "phone": f["phone"], "company": f["company"], "street": f["street"], "city": f["city"],
                "postal_code": f["postal_code"], "state": f["state"], "country": f["country"], "stage": "new",
                "lead_source": f["lead_source"], "owner_id": f["owner_id"], "merged_into_id": None,
                "created_at": us, "updated_at": us}

    def _lead_versions(self, lead: LeadRec, end: int) -> list[tuple[int, str, dict | None]]:
        """Every state of the row: (commit instant in µs, op, row after)."""
        row = self._lead_row(lead)
        out = [(row["created_at"], "c", dict(row))]
        for seq, (ts, kind, *rest) in enumerate(lead.history):
            if ts >= end or (lead.merged_at is not None and ts >= lead.merged_at):
                continue
            if kind == "stage":
                ch = {"stage": rest[0][1]}
            else:
                ch = {k: v for k, v in rest[0].items() if k in row}
                if not ch:
                    continue
            row.update(ch)
            row["updated_at"] = ts * 1_000_000 + seq
            out.append((row["updated_at"], "u", dict(row)))
        if lead.merged_at is not None and lead.merged_at < end:
            row.update(merged_into_id=lead.merged_into.cdc_id, updated_at=lead.merged_at * 1_000_000)
            out.append((row["updated_at"], "u", dict(row)))
            if lead.deleted_at < end:
                out.append((lead.deleted_at * 1_000_000, "d", None))
        return out

    def _opp_versions(self, o: Opp, end: int) -> list[tuple[int, str, dict | None]]:
        row = {"id": o.opp_id, "lead_id": o.lead.cdc_id, "name": o.name, "amount": o.amount, "currency": "USD",
               "stage": "prospecting", "created_at": o.created * 1_000_000, "closed_at": None}
        out = [(row["created_at"], "c", dict(row))]
        for ts, stage in o.stages[1:]:
            if ts >= end:
                break
            row["stage"] = stage
            if stage.startswith("closed"):
                row["closed_at"] = ts * 1_000_000
                if o.won:
                    row["amount"] = o.closed_amount
            out.append((ts * 1_000_000 + 1, "u", dict(row)))
        return out

    def _emit_versions(self, table: str, key: int, versions, full_before: bool) -> bool:
        """Live messages after the connector started, snapshot rows at each snapshot. True if any landed."""
        landed = False
        prev = None
        for i, (us, op, row) in enumerate(versions):
            if us >= self.first * 1_000_000:
                before = prev if (full_before or op == "d") else None
                if op == "d" and not full_before:
                    before = {k: (prev[k] if k == "id" else None) for k in prev}
                self._put("live", table, us, key, i, self._payload(table, op, before, row, us, key))
                landed = True
            prev = row if row is not None else prev
        for s, snap in enumerate(self.snapshots):
            state = None
            for us, op, row in versions:
                if us > snap * 1_000_000:
                    break
                state = row
            if state is not None and snap < self.period.end:
                n = self._snap_rows.get((table, s), 0)
                self._snap_rows[(table, s)] = n + 1
                us = snap * 1_000_000 + n * 1500  # the snapshot reads rows one after another
                text = self._payload(table, "r", None, state, us, key, snapshot="true")
                self._put(f"snap{s}", table, snap * 1_000_000, 0, 0, text)
                landed = True
        return landed

    def add(self, j: Journey) -> list[str]:
        """Spool a journey's rows; returns the lead row keys that appear in some CDC file."""
        end = self.period.end
        keys = []
        for lead in j.leads:
            if lead.created >= end:
                continue
            if self._emit_versions("leads", lead.cdc_id, self._lead_versions(lead, end), True):
                keys.append(str(lead.cdc_id))
        for o in j.opps:
            if o.created < end:
                self._emit_versions("opportunities", o.opp_id, self._opp_versions(o, end), False)
        return keys

    def flush(self) -> None:
        for name in sorted(self._buf):
            with open(self.spool / name, "a", encoding="utf-8") as f:
                f.writelines(self._buf[name])
        self._buf = {}

    # ---- final files -------------------------------------------------------------------------------
    def close(self, d: Draws) -> list[dict]:
        """Write one file per table and day: live messages in commit order (then perturbed), with each
        snapshot's rows streamed in at the snapshot's instant. Nothing holds a whole snapshot in memory."""
        self.flush()
        days = sorted({(n.split(".")[0], int(n.split(".")[1])) for n in (p.name for p in self.spool.iterdir())})
        infos = []
        per_table: dict[str, int] = {}
        for table, day in days:
            k = per_table[table] = per_table.get(table, -1) + 1
            wrap = d.chance(0.5) if k > 1 else k == 0  # about half, and always both shapes
            # Gzipped like a Kafka Connect sink writes them: schema-wrapped messages are mostly schema.
            rel = f"cdc/{table}/{date_text(self.period.start + day * DAY)}.jsonl.gz"
            out = _Out(self.root / rel, _SCHEMA_TEXT[table] if wrap else None)
            live = self._read(f"{table}.{day:05d}.live")
            for s in range(2):
                snap = self.spool / f"{table}.{day:05d}.snap{s}"
                if not snap.exists():
                    continue
                cut = f"{self.snapshots[s] * 1_000_000:017d}"
                before = [x for x in live if x[:17] < cut]
                live = [x for x in live if x[:17] >= cut]
                out.lines(self._perturb(before, d))
                out.snapshot(snap)
            out.lines(self._perturb(live, d))
            out.close()
            infos.append({"file": rel, "kind": f"cdc_{table}", "records": out.records, "tombstones": out.tombstones,
                          "wrapped": wrap})
        shutil.rmtree(self.spool, ignore_errors=True)
        return infos

    def _read(self, name: str) -> list[str]:
        """One day's live messages of a table, in commit order (the spool lines start with a sortable key)."""
        path = self.spool / name
        if not path.exists():
            return []
        with open(path, encoding="utf-8") as f:
            rows = f.readlines()
        rows.sort()
        return rows

    @staticmethod
    def _perturb(rows: list[str], d: Draws) -> list[str]:
        """At-least-once delivery: a few messages twice, a few neighbours swapped; a tombstone after each delete."""
        units = [[x, "null"] if '"op":"d"' in x else [x] for x in (r.split("\t", 1)[1].rstrip("\n") for r in rows)]
        for i in range(len(units) - 1):
            if d.u() < SWAP_RATE and len(units[i]) == 1 and len(units[i + 1]) == 1:
                units[i], units[i + 1] = units[i + 1], units[i]
        out: list[str] = []
        later: list[list] = []
        for u in units:
            out.extend(u)
            if d.u() < DUP_RATE:
                later.append([d.int_between(0, 5), u])
            for item in later:
                item[0] -= 1
            for item in [x for x in later if x[0] < 0]:
                out.extend(item[1])
                later.remove(item)
        for _, u in later:
            out.extend(u)
        return out


class _Out:
    """A CDC file being written: messages with or without the schema wrapper, gzipped, in blocks."""

    def __init__(self, path: Path, schema: str | None):
        self.app = Appender(path, True)
        self.schema = schema
        self.records = self.tombstones = 0

    def _text(self, x: str) -> str:
        if x == "null":
            self.tombstones += 1
            return "null\n"
        return f'{{"schema":{self.schema},"payload":{x}}}\n' if self.schema else x + "\n"

    def lines(self, xs: list[str]) -> None:
        for i in range(0, len(xs), BLOCK):
            block = xs[i:i + BLOCK]
            self.records += len(block)
            self.app.write("".join(self._text(x) for x in block).encode("utf-8"))

    def snapshot(self, path: Path) -> None:
        """Stream a snapshot's rows; the last one is marked snapshot=last, as Debezium does."""
        block: list[str] = []
        prev = None
        with open(path, encoding="utf-8") as f:
            for row in f:
                if prev is not None:
                    block.append(prev)
                    if len(block) >= BLOCK:
                        self.lines(block)
                        block = []
                prev = row.split("\t", 1)[1].rstrip("\n")
        if prev is not None:
            block.append(prev.replace('"snapshot":"true"', '"snapshot":"last"', 1))
        self.lines(block)

    def close(self) -> None:
        self.app.close()
