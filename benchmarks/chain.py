"""Benchmark of the dispatch log: wayhome's chain beside a plain recursive RFC 6962 log.

The peer is the textbook: ``MTH``, ``PATH`` and ``PROOF`` of RFC 6962 section 2.1 written as
the recursions they are defined as, over the list of entries held in memory, and a recursive
verifier that rebuilds the root from a path along the same split. A log built on it recomputes
the root over all entries to sign each batch.

wayhome: ``chain.Ledger`` on SQLite (every batch committed durably, then signed), proofs read
from the stored tree (every fourth level, ``chain.tree``), RFC 9162 iterative verification,
``chain.recipients.recipient_root`` level by level.

Cases (targets from the chain's requirements):

1. append with batched checkpoints (>= 50,000 entries/s);
2. recipient root over 1,000,000 pseudonyms (<= 1 s);
3. inclusion proof from a log of 10,000,000 entries (<= 1 ms); the log is built once by
   ``Ledger.append_many`` into ``--cache`` and reused by later runs;
4. inclusion proof verification (<= 0.2 ms).

Run: ``python -m benchmarks.chain`` (``--log-size N`` for a smaller log, ``--quick`` for a
run of a minute or two on smaller sizes).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chain import Ledger, LogReader
from chain.merkle import leaf_hash, verify_inclusion
from chain.recipients import recipient_root

sys.setrecursionlimit(10_000)
console = Console()


# -- the peer: RFC 6962, section 2.1, as written ---------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def textbook_mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + textbook_mth(d[:k]) + textbook_mth(d[k:])).digest()


def textbook_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return textbook_path(m, d[:k]) + [textbook_mth(d[k:])]
    return textbook_path(m - k, d[k:]) + [textbook_mth(d[:k])]


def textbook_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Rebuild the root along PATH's own split (the inverse of ``textbook_path``)."""
    if n == 1:
        return leaf
    k = _k(n)
    sibling = path[-1]
    if m < k:
        return hashlib.sha256(
            b"\x01" + textbook_root_from_path(m, k, leaf, path[:-1]) + sibling
        ).digest()
    inner = textbook_root_from_path(m - k, n - k, leaf, path[:-1])
    return hashlib.sha256(b"\x01" + sibling + inner).digest()


class TextbookLog:
    """A log on the textbook recursion: entries in memory, the root recomputed per batch."""

    def __init__(self, batch_size: int) -> None:
        self.entries: list[bytes] = []
        self.pending: list[bytes] = []
        self.batch_size = batch_size
        self.roots: list[bytes] = []

    def append(self, entry: bytes) -> int:
        self.pending.append(entry)
        if len(self.pending) >= self.batch_size:
            self.flush()
        return len(self.entries) + len(self.pending) - 1

    def flush(self) -> None:
        self.entries.extend(self.pending)
        self.pending = []
        self.roots.append(textbook_mth(self.entries))


# -- measurement helpers ------------------------------------------------------------------------


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _cpu_timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds: on a shared machine the CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [
        b'{"case":"c-%d","tick":%d,"pad":"0123456789abcdef"}' % (i % 97, i)
        for i in range(start, start + n)
    ]


def _fmt_rate(per_s: float) -> str:
    return f"{per_s:,.0f}/s"


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms"


def bench_append(n: int, peer_n: int, batch: int) -> tuple[str, str, str, str]:
    directory = Path(tempfile.mkdtemp(prefix="wayhome-bench-append-"))
    try:
        entries = _entries(n)
        ledger = Ledger.init(directory / "log", "bench.example/append", batch_size=batch)
        seconds, cpu = _cpu_timed(lambda: (ledger.append_many(entries), ledger.flush()))
        ledger.close()
    finally:
        shutil.rmtree(directory)
    ours = n / seconds

    peer = TextbookLog(batch)
    peer_entries = _entries(peer_n)
    peer_seconds = _timed(lambda: ([peer.append(e) for e in peer_entries], peer.flush()))
    theirs = peer_n / peer_seconds
    return (
        f"append, batches of {batch:,}, {n:,} entries (peer {peer_n:,}); wall (CPU)",
        f"{_fmt_rate(ours)} ({_fmt_rate(n / cpu)})",
        _fmt_rate(theirs),
        f"{ours / theirs:,.1f}x",
    )


def bench_recipients(n: int) -> tuple[str, str, str, str]:
    pseudonyms = [os.urandom(32) for _ in range(n)]
    ours, ours_cpu = min(_cpu_timed(lambda: recipient_root(pseudonyms)) for _ in range(3))
    theirs, theirs_cpu = _cpu_timed(lambda: textbook_mth(pseudonyms))
    assert recipient_root(pseudonyms) == textbook_mth(pseudonyms)
    return (
        f"recipient root, {n:,} pseudonyms; wall (CPU)",
        f"{_fmt_ms(ours)} ({_fmt_ms(ours_cpu)})",
        f"{_fmt_ms(theirs)} ({_fmt_ms(theirs_cpu)})",
        f"{theirs / ours:,.1f}x",
    )


def _build_log(directory: Path, size: int) -> None:
    if (directory / "log.db").exists():
        with LogReader.open(directory) as reader:
            if reader.size == size:
                console.print(f"reusing the {size:,}-entry log in {directory}")
                return
        shutil.rmtree(directory)
    console.print(f"building a {size:,}-entry log in {directory} (once) ...")
    start = time.perf_counter()
    with Ledger.init(directory, "bench.example/big", batch_size=65536) as ledger:
        step = 1_000_000
        for at in range(0, size, step):
            ledger.append_many(_entries(min(step, size - at), at))
        ledger.flush()
    seconds = time.perf_counter() - start
    console.print(
        f"built in {seconds:,.0f} s: {size / seconds:,.0f} entries/s with batched checkpoints"
    )


def bench_proofs(
    directory: Path, size: int, peer_size: int, samples: int
) -> list[tuple[str, str, str, str]]:
    rng = random.Random(7)
    rows = []
    with LogReader.open(directory) as reader:
        indices = [rng.randrange(size) for _ in range(samples)]
        times = []
        proofs = []
        for index in indices:
            start = time.perf_counter()
            proofs.append(reader.inclusion_proof(index, size))
            times.append(time.perf_counter() - start)
        root = reader.checkpoint().root
        leaves = [leaf_hash(e) for e in (reader.entry(i) for i in indices)]

    # The peer proves from the entries in memory; its cost grows with the log, so it is
    # measured on a log of peer_size entries and a few proofs.
    peer_entries = _entries(peer_size)
    peer_times = [
        _timed(lambda i=i: textbook_path(i, peer_entries))
        for i in (rng.randrange(peer_size) for _ in range(3))
    ]
    median = statistics.median(times)
    rows.append(
        (
            f"inclusion proof, log of {size:,} (peer {peer_size:,}), median of {samples}",
            _fmt_ms(median),
            _fmt_ms(statistics.median(peer_times)),
            f"{statistics.median(peer_times) / median:,.0f}x",
        )
    )
    rows.append(
        (
            f"inclusion proof, log of {size:,}, 99th percentile",
            _fmt_ms(sorted(times)[int(samples * 0.99)]),
            "",
            "",
        )
    )

    verify_times = []
    for index, leaf, proof in zip(indices, leaves, proofs, strict=True):
        start = time.perf_counter()
        verify_inclusion(index, size, leaf, proof, root)
        verify_times.append(time.perf_counter() - start)
    peer_verify = []
    for index, leaf, proof in zip(indices, leaves, proofs, strict=True):
        start = time.perf_counter()
        ok = textbook_root_from_path(index, size, leaf, proof) == root
        peer_verify.append(time.perf_counter() - start)
        assert ok
    ours, theirs = statistics.median(verify_times), statistics.median(peer_verify)
    rows.append(
        (
            f"verify an inclusion proof ({len(proofs[0])} hashes), median",
            _fmt_ms(ours),
            _fmt_ms(theirs),
            f"{theirs / ours:,.1f}x",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a minute or two")
    parser.add_argument("--log-size", type=int, default=10_000_000)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "wayhome-bench-chain"
    )
    args = parser.parse_args()
    log_size = 1_000_000 if args.quick and args.log_size == 10_000_000 else args.log_size

    table = Table(title="chain: wayhome vs textbook recursive RFC 6962")
    for column in ("case", "wayhome", "textbook", "ratio"):
        table.add_column(column, justify="left" if column == "case" else "right")

    table.add_row(*bench_append(200_000 if args.quick else 500_000, 50_000, 4096))
    table.add_row(*bench_recipients(1_000_000))
    _build_log(args.cache / f"log-{log_size}", log_size)
    peer_size = 1_000_000 if args.quick else min(log_size, 10_000_000)
    for row in bench_proofs(args.cache / f"log-{log_size}", log_size, peer_size, 2000):
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
