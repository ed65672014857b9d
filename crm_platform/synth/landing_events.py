"""Weekly event files per producer: landing week, late arrivals, shuffled lines, invalid records,
re-sends, and the file-level quirks (empty, truncated gzip, BOM, CRLF).

Lines are buffered per file for one chunk of people, then shuffled and appended, so memory stays
bounded however many leads there are. Every injected line is reported to the truth with its
file and 1-based line number as it is written.
"""
from __future__ import annotations

import re
from pathlib import Path

from .corrupt import KIND_WEIGHTS, KINDS, make_invalid
from .rand import Draws, cumulative
from .sinks import Appender, drain, truncate_gzip

INVALID_RATE = 0.0152  # per valid line: 1-2% of records are invalid
RESEND_SAME_FILE = 0.003
RESEND_CROSS_FILE = 0.003
LATE_RATE = 0.02
RING = 64
_KIND_CUM = cumulative(KIND_WEIGHTS)
_EVENT_ID = re.compile(rb'"event_id": ?"([^"]+)"')

# producer -> gzipped?  Small producers write plain JSONL; the bulk is gzipped.
PRODUCERS = {"web-1": True, "ads-feed": True, "esp-1": True, "crm-api": True, "dialer-1": True,
             "partner-api": False, "cmp-1": True}


def event_id_of(line: bytes) -> str:
    m = _EVENT_ID.search(line)
    return m.group(1).decode() if m else ""


class _File:
    __slots__ = (
        "accepted",
        "app",
        "channels",
        "clean",
        "duplicate",
        "lines",
        "path",
        "producer",
        "quarantined",
        "rel",
        "week",
        "written",
    )

    def __init__(self, root: Path, producer: str, week_label: str, week: int, clean: bool):
        ext = ".jsonl.gz" if PRODUCERS[producer] else ".jsonl"
        self.rel = f"events/{producer}/{week_label}{ext}"
        self.path = root / self.rel
        self.app = Appender(self.path, PRODUCERS[producer])
        self.week, self.producer = week, producer
        self.lines = self.accepted = self.duplicate = self.quarantined = 0
        self.clean = clean  # the file that will be truncated gets no planted records
        self.channels = bytearray() if clean else None
        self.written = None


class EventLanding:
    def __init__(self, root: Path, period, truth):
        self.root, self.period, self.truth = root, period, truth
        n = len(period.weeks)
        self.last_week = n - 1
        self.outage = ("partner-api", n // 2)  # the producer was down: an empty file, its events come a week late
        self.truncated = ("ads-feed", max(0, int(n * 0.45)))
        self.files: dict[tuple[str, int], _File] = {}
        self.buffer: dict[tuple[str, int], list] = {}
        self.rings: dict[str, list] = {p: [] for p in PRODUCERS}
        self.kind_count = 0
        self.touch_counts: dict[int, int] = {}
        self.d: Draws | None = None
        self.quirks: dict = {}

    def begin_chunk(self, d: Draws) -> None:
        self.d = d

    def add(self, producer: str, ts: int, line: bytes, channel: int = -1) -> None:
        """Queue one valid event line; it lands in the file of its week, or later."""
        w = self.period.week_index(ts)
        if self.d.u() < LATE_RATE and w < self.last_week:
            w = min(w + (1 if self.d.u() < 0.8 else 2), self.last_week)
        if (producer, w) == self.outage:
            w += 1
        self.buffer.setdefault((producer, w), []).append((line, channel))

    def _file(self, key) -> _File:
        f = self.files.get(key)
        if f is None:
            producer, w = key
            f = self.files[key] = _File(self.root, producer, self.period.weeks[w], w, key == self.truncated)
        return f

    def flush(self) -> None:
        d = self.d
        for key in sorted(self.buffer):
            self._flush_file(self._file(key), self.buffer[key], d)
        self.buffer = {}

    def _next_kind(self, d: Draws) -> str:
        k = self.kind_count
        self.kind_count += 1
        return KINDS[k] if k < len(KINDS) else d.weighted(KINDS, _KIND_CUM)

    def _flush_file(self, f: _File, items: list, d: Draws) -> None:
        d.shuffle(items)
        out: list[bytes] = []
        pending: list[list] = []  # [countdown, line, line no]
        ring = self.rings[f.producer]
        pool = [line for line, _ in items]

        def emit(line: bytes) -> int:
            out.append(line)
            f.lines += 1
            return f.lines

        for line, ch in items:
            n = emit(line)
            f.accepted += 1
            if ch >= 0:
                self.touch_counts[ch] = self.touch_counts.get(ch, 0) + 1
                if f.channels is not None:
                    f.channels.append(ch)
            if f.clean:
                continue
            if len(ring) < RING:
                ring.append((f.week, line, f.rel, n))
            elif d.u() < 0.02:
                ring[d.below(RING)] = (f.week, line, f.rel, n)
            if d.u() < INVALID_RATE:
                kind = self._next_kind(d)
                bad = make_invalid(kind, line, d, pool)
                m = emit(bad)
                f.quarantined += 1
                bad_id = event_id_of(bad) if kind != "non_object_json" else ""
                self.truth.invalid(f.rel, m, kind, "quarantine", bad_id, "", 0)
            r = d.u()
            if r < RESEND_SAME_FILE:
                pending.append([d.int_between(1, 40), line, n])
            elif r < RESEND_SAME_FILE + RESEND_CROSS_FILE:
                older = [e for e in ring if e[0] < f.week]
                if older:
                    _, old, rel, old_n = d.pick(older)
                    m = emit(old)
                    f.duplicate += 1
                    self.truth.invalid(f.rel, m, "duplicate_resend_cross_file", "duplicate", event_id_of(old),
                                       rel, old_n)
            for p in pending:
                p[0] -= 1
            while pending and min(p[0] for p in pending) <= 0:
                i = min(range(len(pending)), key=lambda k: pending[k][0])
                _, old, old_n = pending.pop(i)
                m = emit(old)
                f.duplicate += 1
                self.truth.invalid(f.rel, m, "duplicate_resend_same_file", "duplicate", event_id_of(old), f.rel, old_n)
        for _, old, old_n in pending:
            m = emit(old)
            f.duplicate += 1
            self.truth.invalid(f.rel, m, "duplicate_resend_same_file", "duplicate", event_id_of(old), f.rel, old_n)
        if out:
            f.app.write(b"\n".join(out) + b"\n")

    def close(self) -> list[dict]:
        """Finish every file, apply the file-level quirks, and describe each file for the manifest."""
        infos = []
        for key in sorted(self.files):
            self.files[key].app.close()
        drain()
        # An empty file: the producer's outage week.
        producer, w = self.outage
        empty_rel = f"events/{producer}/{self.period.weeks[w]}.jsonl"
        (self.root / empty_rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / empty_rel).write_bytes(b"")
        self.quirks["empty_file"] = empty_rel
        # BOM and CRLF on plain files that exist (chosen after the fact, so they always have lines).
        cands = [f for k, f in sorted(self.files.items()) if k[0] == "partner-api" and f.lines > 0]
        for quirk, f in (("bom_file", cands[len(cands) // 3] if cands else None),
                         ("crlf_file", cands[(2 * len(cands)) // 3] if len(cands) > 1 else None)):
            if f is not None:
                data = f.path.read_bytes()
                f.path.write_bytes(b"\xef\xbb\xbf" + data if quirk == "bom_file" else data.replace(b"\n", b"\r\n"))
                self.quirks[quirk] = f.rel
        # A gzip upload cut mid-stream.
        t = self.files.get(self.truncated)
        if t is not None and t.lines > 1:
            readable, kept = truncate_gzip(t.path, 0.6)
            lost = t.channels[readable:]
            for ch in lost:
                self.touch_counts[ch] -= 1
            self.quirks["truncated_gzip"] = {"file": t.rel, "records_written": t.lines, "readable_records": readable,
                                             "bytes_kept": kept}
            t.written = t.lines
            t.lines = t.accepted = readable
        for key in sorted(self.files):
            f = self.files[key]
            info = {"file": f.rel, "kind": "events", "records": f.lines,
                    "expected": {"accepted": f.accepted, "duplicate": f.duplicate, "quarantined": f.quarantined}}
            if f.written is not None:  # the cut-off gzip: records = the complete lines still readable
                info["truncated"] = {"records_written": f.written, "readable_records": f.lines}
            infos.append(info)
        infos.append({"file": empty_rel, "kind": "events", "records": 0,
                      "expected": {"accepted": 0, "duplicate": 0, "quarantined": 0}})
        return infos
