"""``wayhome ledger verify``: a whole log checked from its directory or from its tiles over
HTTP, and every way of tampering with it named."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from chain import Ledger, LogReader
from chain.errors import StoreError
from chain.merkle import leaf_hash
from chain.note import Signer
from dispatch.cli import app
from dispatch.ledger_http import ledger_router
from tests.chain.servers import serve

ORIGIN = "ledger.example.org/test"
runner = CliRunner()
WAYHOME = [sys.executable, "-c", "from dispatch.cli import main; main()"]


def _make_log(directory: Path, n: int = 600, signer: Signer | None = None, tag: str = "") -> str:
    with Ledger.init(directory, ORIGIN, signer=signer, batch_size=128) as log:
        log.append_many([f"entry {i}{tag}".encode() for i in range(n)])
        log.flush()
        return log.vkey


def _verify(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ledger", "verify", *args])
    return result.exit_code, result.output


def _sql(directory: Path, *statements: str) -> None:
    with sqlite3.connect(directory / "log.db") as conn:
        for statement in statements:
            conn.execute(statement)


def test_an_untouched_log_verifies_in_a_real_process(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    done = subprocess.run(
        [*WAYHOME, "ledger", "verify", "--dir", str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "600 entries, 6 checkpoint(s)" in done.stdout


def test_an_altered_entry_is_named(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    _sql(tmp_path / "log", "UPDATE entries SET data = X'00' WHERE idx = 137")
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "entry 137" in output and "altered" in output


def test_a_dropped_entry_is_named(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    _sql(tmp_path / "log", "DELETE FROM entries WHERE idx = 300")
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "entry 300 is missing" in output


def test_two_reordered_entries_are_named(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    _sql(
        tmp_path / "log",
        "UPDATE entries SET idx = -1 WHERE idx = 41",
        "UPDATE entries SET idx = 41 WHERE idx = 42",
        "UPDATE entries SET idx = 42 WHERE idx = -1",
    )
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "entry 41" in output


def test_an_entry_rewritten_with_its_leaf_hash_is_caught_by_the_signed_root(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    with sqlite3.connect(tmp_path / "log" / "log.db") as conn:
        conn.execute("UPDATE entries SET data = ? WHERE idx = 37", (b"rewritten",))
        (row,) = conn.execute("SELECT data FROM hashes WHERE level = 0 AND chunk = 0").fetchone()
        row = row[: 37 * 32] + leaf_hash(b"rewritten") + row[38 * 32 :]
        conn.execute("UPDATE hashes SET data = ? WHERE level = 0 AND chunk = 0", (row,))
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "do not hash to the root signed" in output
    assert "32..47" in output


def test_a_forged_checkpoint_signature_is_caught(tmp_path: Path) -> None:
    _make_log(tmp_path / "log")
    with sqlite3.connect(tmp_path / "log" / "log.db") as conn:
        (note,) = conn.execute("SELECT note FROM checkpoints WHERE size = 256").fetchone()
        conn.execute(
            "UPDATE checkpoints SET note = ? WHERE size = 256", (note.replace("256", "255", 1),)
        )
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "does not verify" in output or "altered" in output


def test_a_log_whose_key_was_swapped_fails_against_the_pinned_key(tmp_path: Path) -> None:
    vkey = _make_log(tmp_path / "log")
    other = Signer.generate(ORIGIN)
    _sql(tmp_path / "log", f"UPDATE meta SET value = '{other.vkey()}' WHERE key = 'vkey'")
    code, output = _verify("--dir", str(tmp_path / "log"), "--vkey", vkey)
    assert code == 1
    assert "is not the expected" in output


def _server(directory: Path) -> FastAPI:
    api = FastAPI()
    api.include_router(ledger_router(LogReader.open(directory)), prefix="/ledger")
    return api


def test_a_log_followed_over_http_verifies_and_remembers_its_checkpoint(tmp_path: Path) -> None:
    vkey = _make_log(tmp_path / "log", n=700)
    state = tmp_path / "seen.json"
    with serve(_server(tmp_path / "log")) as url:
        code, output = _verify("--url", url + "/ledger", "--vkey", vkey, "--state", str(state))
        assert code == 0, output
        assert "700 entries" in output
        with Ledger.open(tmp_path / "log") as log:
            log.append_many([b"more %d" % i for i in range(100)])
        code, output = _verify("--url", url + "/ledger", "--vkey", vkey, "--state", str(state))
        assert code == 0, output
    assert len(json.loads(state.read_text())) == 2


def test_an_entry_altered_behind_the_server_is_named_over_http(tmp_path: Path) -> None:
    vkey = _make_log(tmp_path / "log")
    _sql(tmp_path / "log", "UPDATE entries SET data = X'00' WHERE idx = 513")
    with serve(_server(tmp_path / "log")) as url:
        code, output = _verify("--url", url + "/ledger", "--vkey", vkey)
    assert code == 1
    assert "entry 513" in output


def test_a_fork_served_under_the_same_key_is_caught_by_a_checkpoint_seen_before(
    tmp_path: Path,
) -> None:
    signer = Signer.generate(ORIGIN)
    vkey = _make_log(tmp_path / "honest", signer=signer)
    _make_log(tmp_path / "fork", n=650, signer=signer, tag=" (forked)")
    state = tmp_path / "seen.json"
    with serve(_server(tmp_path / "honest")) as url:
        assert _verify("--url", url + "/ledger", "--vkey", vkey, "--state", str(state))[0] == 0
    with serve(_server(tmp_path / "fork")) as url:
        code, output = _verify("--url", url + "/ledger", "--vkey", vkey, "--state", str(state))
    assert code == 1
    assert "do not hash to the root signed at size 600" in output


def test_the_router_serves_tiles_checkpoints_and_proofs(tmp_path: Path) -> None:
    import httpx

    _make_log(tmp_path / "log", n=300)
    with serve(_server(tmp_path / "log")) as url, httpx.Client(base_url=url + "/ledger") as client:
        checkpoint = client.get("/checkpoint")
        assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
        assert checkpoint.text.startswith(ORIGIN + "\n300\n")
        tile = client.get("/tile/0/001.p/44")
        assert tile.headers["content-type"] == "application/octet-stream"
        assert len(tile.content) == 44 * 32
        assert "immutable" in tile.headers["cache-control"]
        bundle = client.get("/tile/entries/000", headers={"Accept-Encoding": "gzip"})
        assert bundle.headers["content-encoding"] == "gzip"
        assert bundle.content.startswith(b"\x00\x07entry 0")
        assert client.get("/tile/0/001").status_code == 404
        assert client.get("/tile/0/1").status_code == 400
        assert client.get("/tile/0/x000/000").status_code == 400
        assert client.get("/proof/7").text.startswith("c2sp.org/tlog-proof@v1\nindex 7\n")
        assert client.get("/proof/7?size=256").text.count("\n256\n") == 1
        assert client.get("/proof/7?size=255").status_code == 404
        assert client.get("/proof/300").status_code == 400
        assert len(client.get("/proof/consistency/256/300").text.splitlines()) > 0


def test_a_reader_of_a_directory_without_a_log_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="init"):
        LogReader.open(tmp_path / "nothing")


def test_append_refuses_an_oversized_line_and_appends_the_others(tmp_path: Path) -> None:
    Ledger.init(tmp_path / "log", ORIGIN).close()
    lines = b"first\n" + b"x" * 70_000 + b"\nthird\n"
    result = runner.invoke(app, ["ledger", "append", "--dir", str(tmp_path / "log")], input=lines)
    assert result.exit_code == 1
    assert "line 2 refused" in result.output
    assert result.stdout.split() == ["0", "1"]
    with LogReader.open(tmp_path / "log") as reader:
        assert reader.entries(0, reader.size) == [b"first", b"third"]


def test_the_prove_command_prints_bundles_and_consistency_proofs_that_verify(
    tmp_path: Path,
) -> None:
    from chain.merkle import verify_consistency
    from chain.proof import ProofBundle

    directory = str(tmp_path / "log")
    assert (
        runner.invoke(app, ["ledger", "init", "--dir", directory, "--origin", ORIGIN]).exit_code
        == 0
    )
    lines = "".join(f"line {i}\n" for i in range(300))
    appended = runner.invoke(
        app, ["ledger", "append", "--dir", directory, "--batch-size", "100"], input=lines
    )
    assert appended.stdout.split() == [str(i) for i in range(300)]
    with LogReader.open(tmp_path / "log") as log:
        verifier = log.verifier
        root100, root300 = log.checkpoint(100).root, log.checkpoint(300).root

    bundle = runner.invoke(
        app, ["ledger", "prove", "--dir", directory, "--index", "42", "--size", "100"]
    )
    checkpoint, _ = ProofBundle.from_text(bundle.stdout).verify(b"line 42", [verifier])
    assert checkpoint.size == 100

    proof = runner.invoke(
        app, ["ledger", "prove", "--dir", directory, "--from", "100", "--to", "300"]
    )
    hashes = [base64.b64decode(line) for line in proof.stdout.split()]
    verify_consistency(100, 300, hashes, root100, root300)

    missing = runner.invoke(
        app, ["ledger", "prove", "--dir", directory, "--index", "1", "--size", "150"]
    )
    assert missing.exit_code == 1
    assert "no checkpoint of size 150" in missing.output


def _signed_log(directory: Path, forged_at: int, forge) -> str:  # type: ignore[no-untyped-def]
    """A log of signed resolution records, one of them (at ``forged_at``) made by ``forge``."""
    from datetime import UTC, datetime

    from chain.entries import resolution_record, sign_entry

    when = datetime(2026, 5, 1, tzinfo=UTC)
    with Ledger.init(directory, ORIGIN, batch_size=128) as log:
        for i in range(300):
            record = resolution_record(f"case-{i}", when, "found")
            entry = sign_entry(record, log.submitter)
            log.append(forge(entry, record) if i == forged_at else entry)
        log.flush()
        return log.vkey


def test_an_entry_signed_by_a_key_the_log_does_not_accept_is_named(tmp_path: Path) -> None:
    from chain.entries import sign_entry

    intruder = Signer.generate("intruder.example/submitter")
    _signed_log(tmp_path / "log", 123, lambda _, record: sign_entry(record, intruder))
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "entry 123" in output and "not a known submitter" in output


def test_an_entry_whose_signature_bytes_were_altered_is_named(tmp_path: Path) -> None:
    from chain.entries import canonical, parse_entry

    def alter(entry: bytes, _: object) -> bytes:
        value = json.loads(entry)
        signature = parse_entry(entry).signature
        value["sig"]["value"] = base64.b64encode(bytes([signature[0] ^ 1]) + signature[1:]).decode()
        return canonical(value)

    _signed_log(tmp_path / "log", 77, alter)
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 1
    assert "entry 77" in output and "does not verify" in output


def test_signed_entries_are_checked_against_the_pinned_submitter_keys(tmp_path: Path) -> None:
    _signed_log(tmp_path / "log", -1, lambda entry, _: entry)
    code, output = _verify("--dir", str(tmp_path / "log"))
    assert code == 0, output
    assert "300 signed record(s)" in output
    other = Signer.generate("other.example/submitter").vkey()
    code, output = _verify("--dir", str(tmp_path / "log"), "--submitter", other)
    assert code == 1
    assert "entry 0" in output


def test_a_forged_entry_is_named_over_http_against_the_published_submitter_keys(
    tmp_path: Path,
) -> None:
    import httpx

    from chain.entries import sign_entry

    intruder = Signer.generate("intruder.example/submitter")
    vkey = _signed_log(tmp_path / "log", 260, lambda _, record: sign_entry(record, intruder))
    with LogReader.open(tmp_path / "log") as log:
        published = [v.vkey() for v in log.submitters]
    with serve(_server(tmp_path / "log")) as url:
        assert httpx.get(url + "/ledger/submitters").text.split() == published
        code, output = _verify("--url", url + "/ledger", "--vkey", vkey)
    assert code == 1
    assert "entry 260" in output and "not a known submitter" in output


def test_a_writer_with_a_submitter_key_the_log_does_not_accept_is_refused(tmp_path: Path) -> None:
    Ledger.init(tmp_path / "log", ORIGIN).close()
    with pytest.raises(StoreError, match="is not one this log accepts"):
        Ledger.open(tmp_path / "log", submitter=Signer.generate("other.example/submitter"))


def _assert_one_line_error(result, sentence: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert sentence in result.output


def test_a_log_database_that_is_not_sqlite_is_refused_with_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "log.db").write_bytes(b"this is not a database, not even close" * 100)
    for command in (["verify"], ["prove", "--index", "0"]):
        result = runner.invoke(app, ["ledger", *command, "--dir", str(tmp_path / "log")])
        _assert_one_line_error(result, "must be a SQLite log database")


def test_an_unreachable_log_url_is_refused_with_a_sentence(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    vkey = Signer.generate(ORIGIN).vkey()
    result = runner.invoke(
        app, ["ledger", "verify", "--url", f"http://127.0.0.1:{port}/ledger", "--vkey", vkey]
    )
    _assert_one_line_error(result, "cannot fetch")


@pytest.mark.parametrize(("text", "sentence"), [("{not json", "must be JSON"), ("{}", "JSON list")])
def test_a_malformed_state_file_is_refused_with_a_sentence(
    tmp_path: Path, text: str, sentence: str
) -> None:
    _make_log(tmp_path / "log", n=10)
    state = tmp_path / "seen.json"
    state.write_text(text)
    result = runner.invoke(
        app, ["ledger", "verify", "--dir", str(tmp_path / "log"), "--state", str(state)]
    )
    _assert_one_line_error(result, sentence)


def test_a_second_writer_of_one_log_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    _make_log(tmp_path / "log", n=10)
    with Ledger.open(tmp_path / "log") as first:
        result = runner.invoke(
            app, ["ledger", "append", "--dir", str(tmp_path / "log")], input="late\n"
        )
        _assert_one_line_error(result, f"the log in {tmp_path / 'log'} is open by another process")
        with pytest.raises(StoreError, match="open by another process"):
            Ledger.open(tmp_path / "log")
        with LogReader.open(tmp_path / "log") as reader:
            assert reader.size == 10
        first.append(b"from the first writer")
    with Ledger.open(tmp_path / "log") as again:
        assert again.size == 11


def test_a_second_append_process_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    _make_log(tmp_path / "log", n=10)
    append = [*WAYHOME, "ledger", "append", "--dir", str(tmp_path / "log")]
    first = subprocess.Popen(append, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdin is not None and first.stdout is not None
        first.stdin.write("one\n")
        first.stdin.flush()
        assert first.stdout.readline() == "10\n"
        second = subprocess.run(append, input="two\n", capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "is open by another process" in second.stderr
        assert "Traceback" not in second.stderr
        first.stdin.close()
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
    with LogReader.open(tmp_path / "log") as log:
        assert log.entries(10, log.size) == [b"one"]


def test_append_that_fails_does_not_flush_its_queue_on_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chain.sequencer import Sequencer

    _make_log(tmp_path / "log", n=10)
    calls = []

    def failing(self: Sequencer) -> None:
        calls.append(len(self.pending))
        raise StoreError("the disk is full")

    monkeypatch.setattr(Sequencer, "integrate", failing)
    result = runner.invoke(
        app, ["ledger", "append", "--dir", str(tmp_path / "log")], input="a\nb\n"
    )
    _assert_one_line_error(result, "the disk is full")
    assert len(calls) == 1, "the queue was flushed again after the failure"
    monkeypatch.undo()
    with LogReader.open(tmp_path / "log") as log:
        assert log.size == 10


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ["--from", "0", "--to", "300"],
            "a consistency proof needs an old size of at least 1, got 0",
        ),
        (["--from", "100", "--to", "250"], "a new size the log signed, got 250"),
        (["--from", "300", "--to", "100"], "at most the new one, got 300 > 100"),
        (["--index", "3", "--from", "100", "--to", "300"], "not both"),
        (["--size", "100", "--from", "100", "--to", "300"], "not both"),
        (["--from", "100"], "needs both --from M and --to N"),
        ([], "give either --index I"),
    ],
)
def test_the_prove_command_refuses_what_it_cannot_prove_with_a_sentence(
    tmp_path: Path, args: list[str], sentence: str
) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN, batch_size=100) as log:
        log.append_many([b"line %d" % i for i in range(300)])
    result = runner.invoke(app, ["ledger", "prove", "--dir", str(tmp_path / "log"), *args])
    _assert_one_line_error(result, sentence)
    assert result.stdout == ""


def test_the_router_refuses_a_consistency_proof_from_size_0_or_to_an_unsigned_size(
    tmp_path: Path,
) -> None:
    import httpx

    _make_log(tmp_path / "log", n=300)
    with serve(_server(tmp_path / "log")) as url, httpx.Client(base_url=url + "/ledger") as client:
        empty = client.get("/proof/consistency/0/300")
        assert empty.status_code == 400
        assert "old size of at least 1, got 0" in empty.text
        unsigned = client.get("/proof/consistency/100/299")
        assert unsigned.status_code == 400
        assert "a new size the log signed, got 299" in unsigned.text
