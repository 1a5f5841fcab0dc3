"""What the servers and the load share: the cached database, sample keys, a mapping copy, tokens.

Everything slow (the 1M-job database, the sample queries) is cached in ``bench/.cache/``
and keyed by the database file, so a second ``make bench`` starts loading at once. The
cache may be shared by several checkouts (a symlink), so it holds only generated data,
each file written whole under a temporary name and renamed; what one run writes for
itself (mapping copies, wrk's script, server logs, export bodies, sync state) goes to
``bench/.work/`` in this checkout (``work_path``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = (
    "CACHE",
    "CURSOR_SECRET",
    "JWT_SECRET",
    "Samples",
    "bench_mapping",
    "ensure_database",
    "load_samples",
    "mint",
    "work_path",
)

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
WORK = ROOT / "bench" / ".work"
JWT_SECRET = "bench-jwt-secret-not-for-production-0123456789"
CURSOR_SECRET = "bench-cursor-secret-shared-by-all-workers"
PAGE_LIMIT = 50  # the API's default page size; page 10,000 starts at visible row 499,951
DEEP_PAGE = 10_000


def demo_schema_tag() -> str:
    """Changes whenever the demo's schema or generator does, so a cached database is never stale."""
    from legacy_adapters import demo

    folder = Path(demo.__file__).parent
    digest = hashlib.blake2b(digest_size=4)
    for name in ("schema.sql", "generate.py"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def work_path(name: str) -> Path:
    """A file of this checkout's own run, never shared through the cache."""
    WORK.mkdir(parents=True, exist_ok=True)
    return WORK / name


def write_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` under a temporary name, then renamed: a reader never sees half of it."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    partial.rename(path)


def ensure_database(rows: int) -> Path:
    """The cached demo database with ``rows`` jobs, generated on first use (per demo schema version)."""
    path = CACHE / f"jobs-{rows}-{demo_schema_tag()}.db"
    if not path.exists():
        from legacy_adapters.demo import create_demo_database

        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print(f"bench: generating {rows:,}-job demo database in {path} (once) ...", flush=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        create_demo_database(partial, rows)
        partial.rename(path)
        print(f"bench: database ready in {time.monotonic() - started:.0f} s", flush=True)
    return path


@dataclass
class Samples:
    """Keys and filter values that hit real rows, picked once per database file."""

    job_keys: list[str]
    """Visible job numbers, trimmed, for get-by-key."""
    list_customers: list[str]
    """Customers with at least 30 complete visible jobs (the most any customer has is ~44)."""
    deep_page_keys: list[str]
    """Stored JOBNO of the last row before pages DEEP_PAGE-5 .. DEEP_PAGE+4 (key order, PAGE_LIMIT rows each)."""
    visible_jobs: int
    all_jobs: int


def load_samples(db: Path) -> Samples:
    stat = db.stat()
    cache = CACHE / f"samples-{db.stem}-{stat.st_size}-{int(stat.st_mtime)}.json"
    if cache.exists():
        return Samples(**json.loads(cache.read_text()))
    print("bench: sampling keys (once) ...", flush=True)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rng = random.Random(1998)
    (max_rowid,) = conn.execute("SELECT max(rowid) FROM JOBMAST").fetchone()
    ids = rng.sample(range(1, max_rowid + 1), 1500)
    marks = ",".join("?" * len(ids))
    keys = [
        r[0].rstrip()
        for r in conn.execute(f"SELECT JOBNO FROM JOBMAST WHERE rowid IN ({marks}) AND DELFLG <> 'Y'", ids)
    ]
    rng.shuffle(keys)
    customers = [
        r[0].rstrip()
        for r in conn.execute(
            "SELECT CUSTNO FROM JOBMAST WHERE JSTAT = 'C' AND DELFLG <> 'Y' GROUP BY CUSTNO HAVING count(*) >= 30"
        )
    ]
    first = (DEEP_PAGE - 5 - 1) * PAGE_LIMIT - 1
    window = conn.execute(
        "SELECT JOBNO FROM JOBMAST WHERE DELFLG <> 'Y' ORDER BY JOBNO LIMIT ? OFFSET ?", (10 * PAGE_LIMIT, first)
    ).fetchall()
    deep = [window[i * PAGE_LIMIT][0] for i in range(10)]
    (visible,) = conn.execute("SELECT count(*) FROM JOBMAST WHERE DELFLG <> 'Y'").fetchone()
    (total,) = conn.execute("SELECT count(*) FROM JOBMAST").fetchone()
    conn.close()
    samples = Samples(keys[:1000], customers, deep, visible, total)
    write_whole(cache, json.dumps(asdict(samples)))
    return samples


def bench_mapping() -> Path:
    """The demo mapping with a fixed ``api.cursor_secret``, so every worker honours every cursor."""
    from legacy_adapters.demo import DEMO_MAPPING_PATH

    text = DEMO_MAPPING_PATH.read_text()
    marker = "\napi:\n"
    if marker not in text:
        raise SystemExit("bench: the demo mapping has no 'api:' section to add cursor_secret to")
    text = text.replace(marker, marker + "  cursor_secret: ${BENCH_CURSOR_SECRET}\n", 1)
    path = work_path("bridgehead-bench.yaml")
    path.write_text(text)
    # The same with rate limits per address and per token that the load never reaches: what they cost.
    limited = text.replace(
        marker, marker + "  rate_limit: {per_ip: 100000000/minute, per_subject: 100000000/minute}\n", 1
    )
    work_path("bridgehead-bench-limited.yaml").write_text(limited)
    return path


def limited_mapping() -> Path:
    """``bench_mapping``'s twin with ``api.rate_limit`` on (written beside it by ``bench_mapping``)."""
    return work_path("bridgehead-bench-limited.yaml")


def mint() -> str:
    """An admin token for the demo mapping's issuer and audience, valid for two hours."""
    from gateway.cli import mint_token

    return mint_token(
        JWT_SECRET, subject="bench", scopes=["admin"], claims={}, ttl_s=7200,
        issuer="bridgehead-demo", audience="bridgehead",
    )  # fmt: skip
