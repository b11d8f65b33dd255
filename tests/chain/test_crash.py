"""The sequencer killed mid-batch (SIGKILL, a real process) and restarted: no acknowledged
entry lost, every checkpoint published before a kill consistent with the final one, and the
log verifies."""

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

from chain import Ledger, LogReader
from chain.checkpoint import Checkpoint, open_checkpoint
from chain.errors import StoreError
from chain.merkle import leaf_hashes, verify_consistency
from chain.note import parse_note
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


def _published(directory: Path) -> list[str]:
    """The signed checkpoints the log holds now, as a follower reading its store would see."""
    with sqlite3.connect(directory / "log.db") as conn:
        return [note for (note,) in conn.execute("SELECT note FROM checkpoints ORDER BY size")]


def _append_until_killed(
    directory: Path, prefix: str, acknowledged_at_kill: int
) -> tuple[list[int], list[str]]:
    """Stream lines into ``wayhome ledger append``; SIGKILL it mid-stream; the acked indices,
    and the checkpoints it had signed just before the kill."""
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
    published = _published(directory)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    # Whatever the process printed before dying was acknowledged too.
    acked.extend(int(line) for line in process.stdout.read().split())
    process.stdout.close()
    assert len(acked) >= acknowledged_at_kill, "the sequencer acknowledged too few entries"
    return acked, published


def test_a_sequencer_killed_mid_batch_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    Ledger.init(directory, ORIGIN).close()
    runner = CliRunner()
    expected: dict[int, bytes] = {}
    published: list[str] = []

    for round_ in range(3):
        with Ledger.open(directory) as log:
            start = log.next_index
        acked, signed = _append_until_killed(directory, f"round{round_}", 1500 + 700 * round_)
        published.extend(signed)
        assert acked == list(range(start, start + len(acked)))
        expected.update({i: f"round{round_}-{i - start}".encode() for i in acked})

        # Restart: the persisted tree is signed if the kill came before its checkpoint.
        result = runner.invoke(app, ["ledger", "checkpoint", "--dir", str(directory)])
        assert result.exit_code == 0, result.output

        with Ledger.open(directory) as log:
            stored = log.entries(0, log.size)
            for index, data in expected.items():
                assert stored[index] == data, f"acknowledged entry {index} was lost"

    # Every checkpoint signed before a kill is a prefix of the final tree, by a consistency
    # proof from the final log: a restart never re-signed a size with another root.
    with LogReader.open(directory) as log:
        final = log.checkpoint()
        assert final.size > max(expected)
        for note in published:
            checkpoint, _, _ = open_checkpoint(note, [log.verifier], origin=ORIGIN)
            if checkpoint.size == 0:
                continue
            proof = log.consistency_proof(checkpoint.size, final.size)
            verify_consistency(checkpoint.size, final.size, proof, checkpoint.root, final.root)
    assert len({Checkpoint.from_body(parse_note(n).text).size for n in published}) > 10
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
