"""The tlog-witness add-checkpoint logic, its HTTP interface, and the witness policy."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from chain import Ledger
from chain.checkpoint import Checkpoint, sign_checkpoint
from chain.cosignature import CosignatureSigner, CosignatureVerifier, cosignature_time
from chain.errors import WitnessError
from chain.note import Signer, open_note
from chain.witness import Witness, WitnessPolicy, add_checkpoint_request
from dispatch.cli import app
from dispatch.cli.witness import witness_app
from tests.chain.servers import serve

ORIGIN = "ledger.example.org/test"
WAYHOME = [sys.executable, "-c", "from dispatch.cli import main; main()"]


@pytest.fixture
def log(tmp_path: Path) -> Ledger:
    ledger = Ledger.init(tmp_path / "log", ORIGIN, batch_size=10)
    yield ledger
    ledger.close()


def _witness(tmp_path: Path, log: Ledger, name: str = "witness.example/w1") -> Witness:
    signer = CosignatureSigner.generate(name)
    return Witness(
        signer,
        {ORIGIN: [log.verifier]},
        tmp_path / f"{name.replace('/', '_')}.db",
        clock=lambda: 1700000000,
    )


def _grow(log: Ledger, n: int) -> str:
    log.append_many([b"entry %d" % i for i in range(log.next_index, log.next_index + n)])
    return log.flush()


def test_a_witness_cosigns_a_first_checkpoint_then_consistent_ones(
    tmp_path: Path, log: Ledger
) -> None:
    witness = _witness(tmp_path, log)
    note = _grow(log, 15)
    line = witness.add_checkpoint(add_checkpoint_request(0, [], note)).decode()
    _, verified = open_note(note + line, [witness.signer.verifier()])
    assert cosignature_time(verified[0]) == 1700000000
    assert witness.latest(ORIGIN) == (15, log.checkpoint().root)

    note = _grow(log, 30)
    proof = log.consistency_proof(15, 45)
    witness.add_checkpoint(add_checkpoint_request(15, proof, note))
    assert witness.latest(ORIGIN) == (45, log.checkpoint().root)


def _status(witness: Witness, body: bytes) -> tuple[int, int | None]:
    with pytest.raises(WitnessError) as caught:
        witness.add_checkpoint(body)
    return caught.value.status, caught.value.size


def test_a_stale_old_size_is_answered_409_with_the_witness_size(
    tmp_path: Path, log: Ledger
) -> None:
    witness = _witness(tmp_path, log)
    note = _grow(log, 20)
    witness.add_checkpoint(add_checkpoint_request(0, [], note))
    assert _status(witness, add_checkpoint_request(0, [], note)) == (409, 20)


def test_an_unknown_log_is_404_and_a_bad_signature_403(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    stranger = Signer.generate("other.example/log")
    foreign = sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), [stranger]).decode()
    assert _status(witness, add_checkpoint_request(0, [], foreign))[0] == 404
    impostor = Signer.generate(ORIGIN)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)), [impostor]).decode()
    assert _status(witness, add_checkpoint_request(0, [], forged))[0] == 403


def test_a_bad_consistency_proof_is_422_and_changes_nothing(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(add_checkpoint_request(0, [], _grow(log, 20)))
    note = _grow(log, 20)
    proof = log.consistency_proof(20, 40)
    proof[0] = bytes(32)
    assert _status(witness, add_checkpoint_request(20, proof, note))[0] == 422
    assert witness.latest(ORIGIN)[0] == 20


def test_a_fork_at_the_same_size_is_409(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    witness.add_checkpoint(add_checkpoint_request(0, [], _grow(log, 20)))
    fork = sign_checkpoint(Checkpoint(ORIGIN, 20, bytes(32)), [log.signer]).decode()
    assert _status(witness, add_checkpoint_request(20, [], fork)) == (409, 20)


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\n",
        b"olde 0\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + b"AAAA\n" * 64 + b"\n",
        b"old 0 no blank line",
        b"\xff\xfe",
    ],
)
def test_a_malformed_request_is_400(tmp_path: Path, log: Ledger, body: bytes) -> None:
    witness = _witness(tmp_path, log)
    note = _grow(log, 5).encode()
    assert _status(witness, body + note if body.endswith(b"\n\n") else body)[0] == 400


def test_an_old_size_above_the_checkpoint_is_400(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    assert _status(witness, add_checkpoint_request(99, [], _grow(log, 5)))[0] == 400


def test_the_http_interface_answers_as_the_spec_says(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    note = _grow(log, 12)
    with serve(witness_app(witness)) as url, httpx.Client(base_url=url) as client:
        ok = client.post("/add-checkpoint", content=add_checkpoint_request(0, [], note))
        assert ok.status_code == 200 and ok.text.startswith("\u2014 witness.example/w1 ")
        stale = client.post("/add-checkpoint", content=add_checkpoint_request(0, [], note))
        assert stale.status_code == 409
        assert stale.headers["content-type"] == "text/x.tlog.size"
        assert stale.text == "12\n"
        assert client.post("/add-checkpoint", content=b"nonsense").status_code == 400


def test_a_policy_counts_a_checkpoint_only_with_its_quorum(tmp_path: Path, log: Ledger) -> None:
    w1, w2 = _witness(tmp_path, log, "w1.example/w"), _witness(tmp_path, log, "w2.example/w")
    note = _grow(log, 8)
    lines = [w.add_checkpoint(add_checkpoint_request(0, [], note)).decode() for w in (w1, w2)]
    policy = WitnessPolicy([w1.signer.verifier(), w2.signer.verifier()], quorum=2)
    assert policy.check(note + "".join(lines)) == ["w1.example/w", "w2.example/w"]
    with pytest.raises(WitnessError, match="carries 1 valid cosignature.*the policy needs 2"):
        policy.check(note + lines[0])
    with pytest.raises(WitnessError, match="quorum must be within"):
        WitnessPolicy([w1.signer.verifier()], quorum=2)
    assert isinstance(
        CosignatureVerifier.from_vkey(w1.signer.verifier().vkey()), CosignatureVerifier
    )


def test_the_log_gets_cosigned_by_a_real_witness_server(tmp_path: Path, log: Ledger) -> None:
    witness = _witness(tmp_path, log)
    _grow(log, 30)
    log.close()
    runner = CliRunner()
    with serve(witness_app(witness)) as url:
        cosign = [
            "ledger",
            "cosign",
            "--dir",
            str(tmp_path / "log"),
            "--witness",
            url,
            "--witness-vkey",
            witness.signer.verifier().vkey(),
        ]
        first = runner.invoke(app, cosign)
        assert first.exit_code == 0, first.output
        with Ledger.open(tmp_path / "log") as reopened:
            _grow(reopened, 17)
        second = runner.invoke(app, cosign)
        assert second.exit_code == 0, second.output
        assert httpx.post(url + "/add-checkpoint", content=b"old 0\n\n").status_code == 400
    policy = WitnessPolicy([witness.signer.verifier()], quorum=1)
    assert policy.check(second.output) == ["witness.example/w1"]
    assert witness.latest(ORIGIN)[0] == 47


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_witness_command_serves_add_checkpoint_over_http(tmp_path: Path, log: Ledger) -> None:
    _grow(log, 25)
    vkey = log.vkey
    log.close()
    port = _free_port()
    process = subprocess.Popen(
        [
            *WAYHOME,
            "witness",
            "--dir",
            str(tmp_path / "w"),
            "--name",
            "witness.example/cli",
            "--log",
            vkey,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        witness_vkey = process.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the witness did not start"
                time.sleep(0.1)
        result = CliRunner().invoke(
            app,
            [
                "ledger",
                "cosign",
                "--dir",
                str(tmp_path / "log"),
                "--witness",
                url,
                "--witness-vkey",
                witness_vkey,
            ],
        )
        assert result.exit_code == 0, result.output
        policy = WitnessPolicy([CosignatureVerifier.from_vkey(witness_vkey)], quorum=1)
        assert policy.check(result.output) == ["witness.example/cli"]
        stale = httpx.post(
            url + "/add-checkpoint", content=add_checkpoint_request(0, [], result.output)
        )
        assert stale.status_code == 409 and stale.text == "25\n"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_proof_bundle_counts_only_with_its_witness_quorum(tmp_path: Path, log: Ledger) -> None:
    from chain.proof import ProofBundle

    w1, w2 = _witness(tmp_path, log, "w1.example/w"), _witness(tmp_path, log, "w2.example/w")
    note = _grow(log, 9)
    policy = WitnessPolicy([w1.signer.verifier(), w2.signer.verifier()], quorum=2)
    bundle = ProofBundle.from_text(log.proof_bundle(4))
    with pytest.raises(WitnessError, match="carries 0 valid cosignature"):
        bundle.verify(b"entry 4", [log.verifier], policy=policy)
    for witness in (w1, w2):
        log.add_cosignatures(
            9,
            witness.add_checkpoint(add_checkpoint_request(0, [], note)).decode(),
            witness.signer.verifier(),
        )
    bundle = ProofBundle.from_text(log.proof_bundle(4))
    checkpoint, _ = bundle.verify(b"entry 4", [log.verifier], policy=policy)
    assert checkpoint.size == 9


def _tampered(line: str) -> str:
    """A cosignature line with one bit of its signature flipped."""
    import base64

    name, blob = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    return f"{name} {base64.b64encode(bytes(raw)).decode()}\n"


def test_a_cosignature_that_does_not_verify_is_not_kept(tmp_path: Path, log: Ledger) -> None:
    w1, w2 = _witness(tmp_path, log, "w1.example/w"), _witness(tmp_path, log, "w2.example/w")
    note = _grow(log, 5)
    line = w1.add_checkpoint(add_checkpoint_request(0, [], note)).decode()
    with pytest.raises(WitnessError, match="does not verify against its key"):
        log.add_cosignatures(5, _tampered(line), w1.signer.verifier())
    with pytest.raises(WitnessError, match="no cosignature of its key"):
        log.add_cosignatures(5, line, w2.signer.verifier())
    assert log.checkpoint_note(5) == note
    assert log.add_cosignatures(5, line, w1.signer.verifier()) == note + line


def test_cosign_keeps_nothing_from_a_witness_answering_with_another_key(
    tmp_path: Path, log: Ledger
) -> None:
    witness, other = _witness(tmp_path, log), _witness(tmp_path, log, "other.example/w")
    note = _grow(log, 12)
    log.close()
    with serve(witness_app(witness)) as url:
        result = CliRunner().invoke(
            app,
            [
                "ledger",
                "cosign",
                "--dir",
                str(tmp_path / "log"),
                "--witness",
                url,
                "--witness-vkey",
                other.signer.verifier().vkey(),
            ],
        )
    assert result.exit_code == 1
    assert "replied with no cosignature of its key" in result.output
    with Ledger.open(tmp_path / "log") as reopened:
        assert reopened.checkpoint_note() == note


def test_a_bad_cosignature_does_not_spoil_the_valid_ones_toward_the_quorum(
    tmp_path: Path, log: Ledger
) -> None:
    w1, w2 = _witness(tmp_path, log, "w1.example/w"), _witness(tmp_path, log, "w2.example/w")
    note = _grow(log, 8)
    good = w1.add_checkpoint(add_checkpoint_request(0, [], note)).decode()
    bad = _tampered(w2.add_checkpoint(add_checkpoint_request(0, [], note)).decode())
    policy = WitnessPolicy([w1.signer.verifier(), w2.signer.verifier()], quorum=1)
    assert policy.check(note + bad + good) == ["w1.example/w"]
    strict = WitnessPolicy([w1.signer.verifier(), w2.signer.verifier()], quorum=2)
    with pytest.raises(WitnessError, match=r"1 more from known witnesses did not verify"):
        strict.check(note + bad + good)


def test_verify_checks_the_latest_checkpoint_against_a_witness_quorum(
    tmp_path: Path, log: Ledger
) -> None:
    w1, w2 = _witness(tmp_path, log, "w1.example/w"), _witness(tmp_path, log, "w2.example/w")
    note = _grow(log, 20)
    line = w1.add_checkpoint(add_checkpoint_request(0, [], note)).decode()
    log.add_cosignatures(20, line, w1.signer.verifier())
    log.close()
    runner = CliRunner()
    base = ["ledger", "verify", "--dir", str(tmp_path / "log")]
    k1, k2 = w1.signer.verifier().vkey(), w2.signer.verifier().vkey()

    one = runner.invoke(app, [*base, "--witness", k1, "--witness", k2, "--quorum", "1"])
    assert one.exit_code == 0, one.output
    assert "cosigned by w1.example/w" in one.output
    both = runner.invoke(app, [*base, "--witness", k1, "--witness", k2])
    assert both.exit_code == 1
    assert "carries 1 valid cosignature(s)" in both.output and "needs 2" in both.output
    alone = runner.invoke(app, [*base, "--quorum", "1"])
    assert alone.exit_code == 1
    assert "give them too" in alone.output
