"""The sequencer killed mid-batch (SIGKILL, a real process) and restarted: no acknowledged
entry lost, no two inconsistent checkpoints, and the log verifies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain import Ledger
from chain.errors import StoreError
from chain.merkle import leaf_hashes
from dispatch.cli import app

WAYHOME = [sys.executable, "-c", "from dispatch.cli import main; main()"]
ORIGIN = "ledger.example.org/crash"


def _feed(stdin, lines: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    try:
        for at in range(0, len(lines), 500):
            stdin.write(b"".join(lines[at : at + 500]))
            stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass


def _append_until_killed(directory: Path, prefix: str, acknowledged_at_kill: int) -> list[int]:
    """Stream lines into ``wayhome ledger append``; SIGKILL it mid-stream; the acked indices."""
    process = subprocess.Popen(
        [
            *WAYHOME,
            "ledger",
            "append",
            "--dir",
            str(directory),
            "--batch-size",
            "97",
            "--batch-age-ms",
            "20",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    lines = [f"{prefix}-{k}\n".encode() for k in range(200_000)]
    feeder = threading.Thread(target=_feed, args=(process.stdin, lines), daemon=True)
    feeder.start()
    acked: list[int] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < acknowledged_at_kill and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    # Whatever the process printed before dying was acknowledged too.
    acked.extend(int(line) for line in process.stdout.read().split())
    process.stdout.close()
    assert len(acked) >= acknowledged_at_kill, "the sequencer acknowledged too few entries"
    return acked


def test_a_sequencer_killed_mid_batch_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    Ledger.init(directory, ORIGIN).close()
    runner = CliRunner()
    expected: dict[int, bytes] = {}

    for round_ in range(3):
        with Ledger.open(directory) as log:
            start = log.next_index
        acked = _append_until_killed(directory, f"round{round_}", 1500 + 700 * round_)
        assert acked == list(range(start, start + len(acked)))
        expected.update({i: f"round{round_}-{i - start}".encode() for i in acked})

        # Restart: the persisted tree is signed if the kill came before its checkpoint.
        result = runner.invoke(app, ["ledger", "checkpoint", "--dir", str(directory)])
        assert result.exit_code == 0, result.output

        with Ledger.open(directory) as log:
            stored = log.entries(0, log.size)
            for index, data in expected.items():
                assert stored[index] == data, f"acknowledged entry {index} was lost"
            sizes = [c.size for c in log.store.checkpoints()]
            assert sizes == sorted(set(sizes))

    # One root per size, each the root of the same entries: no inconsistent checkpoints.
    with sqlite3.connect(directory / "log.db") as conn:
        rows = conn.execute("SELECT size, COUNT(DISTINCT root) FROM checkpoints GROUP BY size")
        assert all(count == 1 for _, count in rows)
    done = subprocess.run(
        [*WAYHOME, "ledger", "verify", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_tree_persisted_but_not_signed_is_signed_on_restart(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many([b"signed %d" % i for i in range(10)])
        log.flush()
        # Step 1 of a batch only, as if killed between the commit and the signature.
        batch = [b"unsigned %d" % i for i in range(5)]
        rows, state = log.tree.plan_append(log.sequencer.state, leaf_hashes(batch))
        log.store.commit(10, batch, rows, state)
        assert log.store.latest_checkpoint().size == 10
    with Ledger.open(tmp_path / "log") as log:
        assert log.size == 15
        assert log.checkpoint().root == state.root


def test_the_sequencer_refuses_to_sign_a_tree_inconsistent_with_its_checkpoint(
    tmp_path: Path,
) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many([b"entry %d" % i for i in range(10)])
        log.flush()
    with sqlite3.connect(tmp_path / "log" / "log.db") as conn:
        (edge,) = conn.execute("SELECT edge FROM tree").fetchone()
        conn.execute("UPDATE tree SET edge = ?", (bytes(32) + edge[32:],))
    with pytest.raises(StoreError, match="not consistent with its own root"):
        Ledger.open(tmp_path / "log")
    with sqlite3.connect(tmp_path / "log" / "log.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone() == (10,)
        assert conn.execute("SELECT MAX(size) FROM checkpoints").fetchone() == (10,)


@pytest.mark.parametrize(
    ("column", "sentence"),
    [("edge", "the stored tree edge is not the right edge"), ("root", "the stored tree root")],
)
def test_verify_refuses_a_tree_state_the_writer_would_refuse(
    tmp_path: Path, column: str, sentence: str
) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many([b"entry %d" % i for i in range(10)])
        log.flush()
    with sqlite3.connect(tmp_path / "log" / "log.db") as conn:
        (value,) = conn.execute(f"SELECT {column} FROM tree").fetchone()
        conn.execute(f"UPDATE tree SET {column} = ?", (bytes(len(value)),))
    result = CliRunner().invoke(app, ["ledger", "verify", "--dir", str(tmp_path / "log")])
    assert result.exit_code == 1
    assert sentence in result.output
    assert "verified" not in result.output
