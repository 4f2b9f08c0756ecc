"""A deterministic offline sample of the four datasets, and a loopback server that publishes it.

``--sample`` runs and the tests use the same server: it serves the sample at the real hosts' paths
(``/iowrt/iowrt.parquet`` …) with ETag/Last-Modified and 304s, so sample data enters through the
same fetch → validate → land path as live data. Fault modes make it misbehave the ways real hosts
do (5xx bursts, 429 with Retry-After, slow or truncated bodies, HTML with 200, schema drift).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.datasets import DATASETS

SEED = 20240101
FIRST_MONTH = date(2015, 1, 1)
LAST_MONTH = date(2025, 8, 1)
FUEL_FIRST_WEEK = date(2017, 3, 30)
FUEL_LAST_WEEK = date(2025, 10, 30)
BUDI95_START = date(2025, 9, 30)
DIESEL_SPLIT = date(2024, 6, 13)

# 3-digit MSIC groups of Section G with their English titles and a rough share of trade sales.
MSIC_GROUPS: dict[str, tuple[str, float]] = {
    "451": ("Sale of motor vehicles", 0.070),
    "452": ("Maintenance and repair of motor vehicles", 0.012),
    "453": ("Sale of motor vehicle parts and accessories", 0.018),
    "454": ("Sale, maintenance and repair of motorcycles and related parts", 0.006),
    "461": ("Wholesale on a fee or contract basis", 0.020),
    "462": ("Wholesale of agricultural raw materials and live animals", 0.060),
    "463": ("Wholesale of food, beverages and tobacco", 0.090),
    "464": ("Wholesale of household goods", 0.080),
    "465": ("Wholesale of machinery, equipment and supplies", 0.070),
    "466": ("Other specialized wholesale", 0.160),
    "469": ("Non-specialized wholesale trade", 0.030),
    "471": ("Retail sale in non-specialized stores", 0.110),
    "472": ("Retail sale of food, beverages and tobacco in specialized stores", 0.030),
    "473": ("Retail sale of automotive fuel in specialized stores", 0.060),
    "474": ("Retail sale of information and communication equipment", 0.030),
    "475": ("Retail sale of other household equipment in specialized stores", 0.040),
    "476": ("Retail sale of cultural and recreation goods in specialized stores", 0.010),
    "477": ("Retail sale of other goods in specialized stores", 0.070),
    "478": ("Retail sale via stalls and markets", 0.004),
    "479": ("Retail trade not in stores, stalls or markets", 0.030),
}
DIVISIONS = {"45": "Wholesale and retail trade and repair of motor vehicles and motorcycles",
             "46": "Wholesale trade, except of motor vehicles and motorcycles",
             "47": "Retail trade, except of motor vehicles and motorcycles"}


def _months(first: date = FIRST_MONTH, last: date = LAST_MONTH) -> list[date]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def _timestamps(days: list[date]) -> pa.Array:
    return pa.array([d.isoformat() for d in days]).cast(pa.timestamp("s")).cast(pa.timestamp("ns"))


def fuel_levels(rng: random.Random) -> list[tuple[date, float, float, float, float, float | None]]:
    """Weekly (date, ron95, ron97, diesel, diesel_eastmsia, ron95_budi95) levels, RM/litre."""
    rows = []
    ron95, ron97, diesel = 2.20, 2.50, 2.10
    week = FUEL_FIRST_WEEK
    while week <= FUEL_LAST_WEEK:
        if week < date(2021, 3, 3):
            # Before the 2021 price ceiling, prices followed world oil in small weekly steps.
            ron95 = min(2.30, max(1.25, ron95 + rng.choice([-0.05, -0.03, 0.0, 0.0, 0.03, 0.05])))
            diesel = min(2.35, max(1.35, diesel + rng.choice([-0.05, -0.02, 0.0, 0.0, 0.02, 0.05])))
        else:
            ron95, diesel = 2.05, 2.15
        ron97 = min(4.95, max(1.90, ron97 + rng.choice([-0.10, -0.05, 0.0, 0.05, 0.10])))
        peninsular = 3.35 if week >= DIESEL_SPLIT else diesel
        budi95 = 1.99 if week >= BUDI95_START else None
        rows.append((week, round(ron95, 2), round(ron97, 2), round(peninsular, 2), round(diesel, 2), budi95))
        week += timedelta(days=7)
    return rows


@functools.cache
def fuelprice_table() -> pa.Table:
    rng = random.Random(SEED + 3)
    levels = fuel_levels(rng)
    dates, series, cols = [], [], {k: [] for k in ("ron95", "ron97", "diesel", "diesel_eastmsia", "ron95_budi95")}
    previous = None
    for row in levels:
        values = dict(zip(cols, row[1:]))
        dates.append(row[0]); series.append("level")
        for k in cols:
            cols[k].append(values[k])
        if previous is not None:
            dates.append(row[0]); series.append("change_weekly")
            for k in cols:
                a, b = values[k], previous[k]
                cols[k].append(None if a is None or b is None else round(a - b, 2))
        previous = values
    return pa.table({"series_type": series, "date": pa.array(dates, pa.date32()),
                     **{k: pa.array(v, pa.float64()) for k, v in cols.items()}})


def _monthly_fuel_index() -> dict[date, float]:
    """Monthly mean RON95 level, used to make fuel-sensitive groups move with the pump price."""
    sums: dict[date, list[float]] = {}
    for row in fuel_levels(random.Random(SEED + 3)):
        sums.setdefault(row[0].replace(day=1), []).append(row[1])
    return {m: sum(v) / len(v) for m, v in sums.items()}


def _series_rows(months: list[date], sales: list[float], volume: list[float]) -> list[tuple]:
    """'abs' rows plus growth_yoy / growth_mom (percent) where the base month exists."""
    rows = [("abs", m, s, v) for m, s, v in zip(months, sales, volume)]
    for i, m in enumerate(months):
        if i >= 12:
            rows.append(("growth_yoy", m, round(100 * (sales[i] / sales[i - 12] - 1), 1),
                         round(100 * (volume[i] / volume[i - 12] - 1), 1)))
        if i >= 1:
            rows.append(("growth_mom", m, round(100 * (sales[i] / sales[i - 1] - 1), 1),
                         round(100 * (volume[i] / volume[i - 1] - 1), 1)))
    return rows


@functools.cache
def iowrt_3d_table() -> pa.Table:
    rng = random.Random(SEED + 2)
    months = _months()
    fuel = _monthly_fuel_index()
    series, dates, groups, sales_col, volume_col = [], [], [], [], []
    for code, (_, share) in MSIC_GROUPS.items():
        sales, volume = [], []
        for i, m in enumerate(months):
            trend = (1.004) ** i * (1 + 0.04 * math.sin(2 * math.pi * (m.month - 3) / 12))
            if m.year == 2020 and 4 <= m.month <= 6:
                trend *= 0.72  # movement control order
            price = fuel.get(m, 2.05) / 2.05 if code in {"473", "451", "453"} else 1.0
            s = 125_000 * share * trend * price * (1 + rng.gauss(0, 0.015))
            sales.append(round(s, 1))
            volume.append(round(100 * trend * (1 + rng.gauss(0, 0.01)), 1))
        for row in _series_rows(months, sales, volume):
            series.append(row[0]); dates.append(row[1]); groups.append(code)
            sales_col.append(row[2]); volume_col.append(row[3])
    return pa.table({"series": series, "date": pa.array(dates, pa.date32()), "group": groups,
                     "sales": pa.array(sales_col, pa.float64()), "volume": pa.array(volume_col, pa.float64())})


@functools.cache
def iowrt_table() -> pa.Table:
    detail = iowrt_3d_table().filter(pa.compute.equal(pa.compute.field("series"), "abs"))
    months = _months()
    by_month: dict[date, list[float]] = {}
    for d, s, v in zip(detail["date"].to_pylist(), detail["sales"].to_pylist(), detail["volume"].to_pylist()):
        acc = by_month.setdefault(d, [0.0, 0.0, 0])
        acc[0] += s; acc[1] += v; acc[2] += 1
    sales = [round(by_month[m][0], 1) for m in months]
    volume = [round(by_month[m][1] / by_month[m][2], 1) for m in months]
    rows = _series_rows(months, sales, volume)
    seasonal = {m: 1 + 0.03 * math.sin(2 * math.pi * (m.month - 3) / 12) for m in months}
    return pa.table({
        "series": [r[0] for r in rows],
        "date": _timestamps([r[1] for r in rows]),
        "sales": pa.array([r[2] for r in rows], pa.float64()),
        "volume": pa.array([r[3] for r in rows], pa.float64()),
        "volume_sa": pa.array([round(r[3] / seasonal[r[1]], 1) if r[0] == "abs" else r[3] for r in rows], pa.float64()),
    })


@functools.cache
def msic_table() -> pa.Table:
    rows: list[dict] = []

    def add(digits, section, division, group, class_, item, desc):
        rows.append({"digits": digits, "section": section, "division": division, "group": group, "class": class_,
                     "item": item, "desc_en": desc, "exclude_en": None, "include_en": None,
                     "desc_bm": desc.upper(), "exclude_bm": None, "include_bm": None})

    add(1, "A", "-", "-", "-", "-", "Agriculture, forestry and fishing")
    add(2, "A", "01", "-", "-", "-", "Crop and animal production, hunting and related service activities")
    add(3, "A", "01", "011", "-", "-", "Growing of non-perennial crops")
    add(1, "G", "-", "-", "-", "-", "Wholesale and retail trade; repair of motor vehicles and motorcycles")
    for div, desc in DIVISIONS.items():
        add(2, "G", div, "-", "-", "-", desc)
    for code, (desc, _) in MSIC_GROUPS.items():
        add(3, "G", code[:2], code, "-", "-", desc)
        add(4, "G", code[:2], code, f"{code}0", "-", desc)
        add(5, "G", code[:2], code, f"{code}0", f"{code}01", f"{desc} (item)")
    add(1, "C", "-", "-", "-", "-", "Manufacturing")
    add(3, "C", "10", "101", "-", "-", "Processing and preserving of meat")
    return pa.Table.from_pylist(rows, schema=pa.schema(
        [("digits", pa.int64())] + [(k, pa.string()) for k in rows[0] if k != "digits"]))


SAMPLE_TABLES = {"iowrt": iowrt_table, "iowrt_3d": iowrt_3d_table, "fuelprice": fuelprice_table, "msic": msic_table}


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def sample_payloads() -> dict[str, bytes]:
    """Path on the real host → Parquet bytes, for every dataset."""
    return {DATASETS[name].path: parquet_bytes(build()) for name, build in SAMPLE_TABLES.items()}


# --------------------------------------------------------------------------------------------- server

FAULTS = ("html", "truncated", "empty", "empty_table", "corrupt", "5xx", "429", "slow", "404", "missing_column",
          "renamed_column", "string_columns", "bad_values", "extra_column")


def apply_table_fault(table: pa.Table, fault: str, arg: str | None) -> pa.Table:
    """Schema and value drift, applied to the published table before encoding."""
    if fault == "empty_table":
        return table.slice(0, 0)
    if fault == "missing_column":
        return table.drop_columns([arg or table.column_names[-1]])
    if fault == "renamed_column":
        old, new = (arg or "date=ymd").split("=")
        return table.rename_columns([new if c == old else c for c in table.column_names])
    if fault == "string_columns":
        return pa.table({c: (table[c].cast(pa.string()) if c not in {"series", "series_type", "group"} else table[c])
                         for c in table.column_names})
    if fault == "bad_values":
        col = arg or next(c for c in table.column_names if pa.types.is_floating(table[c].type))
        values = table[col].cast(pa.string()).to_pylist()
        values[len(values) // 2] = "n/a"
        return table.set_column(table.column_names.index(col), col, pa.array(values, pa.string()))
    if fault == "extra_column":
        return table.append_column(arg or "ron95_skps", pa.array([1.99] * table.num_rows, pa.float64()))
    return table


@dataclass
class SampleServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving path → bytes with conditional GET and fault modes.

    ``faults`` maps a path to ``"mode"`` or ``"mode:arg"`` (e.g. ``"5xx:2"`` fails twice then serves,
    ``"429:1"`` answers one 429 with Retry-After, ``"slow:3"`` waits 3 s before answering).
    """

    payloads: dict[str, bytes]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    retry_after_s: float = 1.0
    last_modified: str = formatdate(1_700_000_000, usegmt=True)
    requests: list[dict] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set_fault(self, path: str, fault: str | None) -> None:
        with self._lock:
            if fault is None:
                self.faults.pop(path, None)
            else:
                self.faults[path] = fault
            self._counters.pop(path, None)

    def replace(self, path: str, content: bytes) -> None:
        with self._lock:
            self.payloads[path] = content

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        with self._lock:
            fault = self.faults.get(path, "")
            seen = self._counters.get(path, 0)
            self._counters[path] = seen + 1
            content = self.payloads.get(path)
        mode, _, arg = fault.partition(":")
        record = {"path": path, "status": None, "if_none_match": handler.headers.get("If-None-Match")}
        self.requests.append(record)  # recorded on arrival, so slow responses count before they finish
        status, headers, body = 200, {}, content
        if content is None:
            status, body = 404, b"<html><body>Not Found</body></html>"
        elif mode == "404":
            status, body = 404, b"<html><body>Not Found</body></html>"
        elif mode == "5xx" and seen < int(arg or 10**6):
            status, body = 503, b"<html><body>Service Unavailable</body></html>"
        elif mode == "429" and seen < int(arg or 10**6):
            status, body = 429, b"Too Many Requests"
            headers["Retry-After"] = f"{self.retry_after_s:g}"
        elif mode == "slow":
            time.sleep(float(arg or 5))
        elif mode == "html":
            body = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
        elif mode == "truncated":
            body = content[: len(content) // 2]
        elif mode == "empty":
            body = b""
        elif mode == "corrupt":
            body = content[:4] + bytes(len(content) - 8) + content[-4:]
        elif mode in {"empty_table", "missing_column", "renamed_column", "string_columns", "bad_values", "extra_column"}:
            table = self.tables.get(path) or pq.read_table(pa.BufferReader(content))
            body = parquet_bytes(apply_table_fault(table, mode, arg or None))
        if status == 200:
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            headers.update({"ETag": etag, "Last-Modified": self.last_modified, "Content-Type": "application/octet-stream"})
            if handler.headers.get("If-None-Match") == etag:
                status, body = 304, b""
            if mode == "html":
                headers["Content-Type"] = "text/html; charset=utf-8"
        elif status >= 400 and body and body.startswith(b"<"):
            headers["Content-Type"] = "text/html"
        record["status"] = status
        handler.send_response(status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body or b"")))
        handler.end_headers()
        if body and handler.command != "HEAD":
            try:
                handler.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    @contextmanager
    def running(self) -> Iterator["SampleServer"]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner._respond(self)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name="sample-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def sample_server(faults: dict[str, str] | None = None) -> SampleServer:
    """A server publishing the deterministic sample; ``faults`` is keyed by dataset name."""
    tables = {DATASETS[name].path: build() for name, build in SAMPLE_TABLES.items()}
    return SampleServer(payloads={p: parquet_bytes(t) for p, t in tables.items()}, tables=tables,
                        faults={DATASETS[k].path: v for k, v in (faults or {}).items()})
