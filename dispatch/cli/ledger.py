"""``wayhome ledger``: operate a signed, append-only dispatch log kept in a directory.

- ``init --dir D --origin O``: create the log and its key; print the verifier key.
- ``append --dir D``: each stdin line (without its newline) is one entry; print each index once
  the batch holding it is durable (integrated and signed).
- ``checkpoint --dir D``: integrate what is pending; print the signed checkpoint.
- ``prove --dir D --index I [--size N]``: print a ``c2sp.org/tlog-proof@v1`` bundle;
  ``prove --dir D --from M --to N``: a consistency proof, one base64 hash a line.
- ``verify --dir D`` or ``verify --url U --vkey K``: check the whole log, every signed entry
  against the submitter keys the log publishes (or ``--submitter`` keys), and say where it
  was tampered with if it was.
  With ``--witness K`` (repeatable) and ``--quorum N``, the latest checkpoint must also carry
  N valid cosignatures from those witnesses.
- ``cosign --dir D --witness URL --witness-vkey K``: ask witnesses (C2SP tlog-witness) to
  cosign the latest checkpoint, and keep with it the cosignatures that verify against K.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chain.cosignature import witness_verifier
from chain.errors import ChainError, EntryError, TamperError
from chain.ledger import Ledger, LogReader
from chain.note import Verifier, b64encode, parse_note
from chain.verify import follow, verify_store
from chain.witness import WitnessPolicy, add_checkpoint_request

_err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


class HttpTiles:
    """A log's tlog-tiles resources fetched over HTTP."""

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/") + "/", timeout=timeout_s)

    def read_path(self, path: str) -> bytes:
        try:
            response = self.client.get(path)
        except httpx.HTTPError as exc:
            raise ChainError(
                f"cannot fetch {self.client.base_url}{path}: {exc or type(exc).__name__}; "
                "the log must be reachable at --url"
            ) from None
        if response.status_code != 200:
            raise ChainError(f"GET {path} answered {response.status_code}; the log must serve it")
        return response.content

    def close(self) -> None:
        self.client.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
    )


def register(app: typer.Typer) -> None:
    ledger = typer.Typer(
        name="ledger", help="Operate a signed, append-only dispatch log.", no_args_is_help=True
    )
    app.add_typer(ledger, name="ledger")

    @ledger.command()
    def init(
        dir: Path = typer.Option(..., "--dir", help="Directory of the log (created)."),
        origin: str = typer.Option(..., "--origin", help="The log's origin, e.g. example.org/log."),
    ) -> None:
        """Create a log and its Ed25519 key; print its C2SP verifier key."""
        try:
            with Ledger.init(dir, origin) as log:
                typer.echo(log.vkey)
        except ChainError as exc:
            raise _fail(str(exc)) from None

    @ledger.command()
    def append(
        dir: Path = typer.Option(..., "--dir", help="Directory of the log."),
        batch_size: int = typer.Option(1024, help="Entries per batch (one checkpoint each)."),
        batch_age_ms: int = typer.Option(200, help="Longest wait of an entry before its batch."),
    ) -> None:
        """Append each line of stdin as one entry; print each index once it is durable."""
        try:
            log = Ledger.open(dir, batch_size=batch_size, batch_age_ms=batch_age_ms)
        except ChainError as exc:
            raise _fail(str(exc)) from None

        # A reader thread feeds lines, so a slow stream still gets its batches on time.
        lines: queue.Queue[bytes | None] = queue.Queue(maxsize=65536)

        def read() -> None:
            for line in sys.stdin.buffer:
                lines.put(line[:-1] if line.endswith(b"\n") else line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        waiting: list[int] = []
        line_number = refused = 0
        out = sys.stdout

        def acknowledge() -> None:
            if waiting and not log.sequencer.pending:
                out.write("".join(f"{i}\n" for i in waiting))
                out.flush()
                waiting.clear()

        try:
            while True:
                try:
                    line = lines.get(timeout=max(batch_age_ms, 1) / 1000)
                except queue.Empty:
                    log.tick()
                    acknowledge()
                    continue
                if line is None:
                    break
                line_number += 1
                try:
                    waiting.append(log.append(line))
                except EntryError as exc:
                    refused += 1
                    _err.print(
                        f"[red]error:[/red] line {line_number} refused: {exc}", highlight=False
                    )
                    continue
                acknowledge()
            log.flush()
            acknowledge()
        except BaseException as exc:
            # What is queued was never acknowledged: leave it out rather than flush it now.
            log.close(flush=False)
            if isinstance(exc, ChainError):
                raise _fail(str(exc)) from None
            raise
        log.close()
        if refused:
            raise _fail(f"{refused} line(s) were refused; every other line was appended")

    @ledger.command()
    def checkpoint(dir: Path = typer.Option(..., "--dir", help="Directory of the log.")) -> None:
        """Integrate what is pending and print the signed checkpoint."""
        try:
            with Ledger.open(dir) as log:
                typer.echo(log.flush(), nl=False)
        except ChainError as exc:
            raise _fail(str(exc)) from None

    @ledger.command()
    def prove(
        dir: Path = typer.Option(..., "--dir", help="Directory of the log."),
        index: int | None = typer.Option(None, "--index", help="Entry to prove included."),
        size: int | None = typer.Option(None, "--size", help="Signed tree size (default: latest)."),
        size1: int | None = typer.Option(None, "--from", help="Older tree size."),
        size2: int | None = typer.Option(None, "--to", help="Newer tree size."),
    ) -> None:
        """Print an inclusion proof bundle (--index) or a consistency proof (--from/--to)."""
        inclusion = index is not None or size is not None
        consistency = size1 is not None or size2 is not None
        if inclusion == consistency or (inclusion and index is None):
            raise _fail("give either --index I [--size N], or --from M --to N, not both")
        if consistency and (size1 is None or size2 is None):
            raise _fail("a consistency proof needs both --from M and --to N")
        try:
            with LogReader.open(dir) as log:
                if index is not None:
                    typer.echo(log.proof_bundle(index, size), nl=False)
                else:
                    assert size1 is not None and size2 is not None
                    for digest in log.consistency_proof(size1, size2):
                        typer.echo(b64encode(digest))
        except ChainError as exc:
            raise _fail(str(exc)) from None

    @ledger.command()
    def verify(
        dir: Path | None = typer.Option(None, "--dir", help="Directory of the log."),
        url: str | None = typer.Option(None, "--url", help="URL prefix of the log's tiles."),
        vkey: str | None = typer.Option(None, "--vkey", help="The log's verifier key to trust."),
        state: Path | None = typer.Option(
            None, "--state", help="JSON file of checkpoints seen before; updated on success."
        ),
        submitter: list[str] = typer.Option(
            [],
            "--submitter",
            help="Verifier key of a submitter whose signed entries to accept (repeatable); "
            "default: the keys the log publishes.",
        ),
        witness: list[str] = typer.Option(
            [], "--witness", help="Verifier key of a witness of the policy (repeatable)."
        ),
        quorum: int | None = typer.Option(
            None,
            "--quorum",
            help="Cosignatures the latest checkpoint needs from --witness keys (default: all).",
        ),
    ) -> None:
        """Verify every entry, root, signature and checkpoint; name the entry tampered with."""
        if (dir is None) == (url is None):
            raise _fail("give exactly one of --dir or --url")
        try:
            seen = _read_state(state)
            verifier = Verifier.from_vkey(vkey) if vkey else None
            submitters = [Verifier.from_vkey(k) for k in submitter] or None
            witnesses = [witness_verifier(k) for k in witness]
            if quorum is not None and not witnesses:
                raise _fail("--quorum counts cosignatures of --witness keys; give them too")
            policy = WitnessPolicy(witnesses, len(witnesses) if quorum is None else quorum)
            with _progress() as bar:
                task = bar.add_task("verifying", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                if dir is not None:
                    with LogReader.open(dir) as log:
                        report = verify_store(
                            log.store, verifier, submitters=submitters, progress=progress
                        )
                        for old in seen:
                            _check_seen(old, log)
                else:
                    assert url is not None
                    if verifier is None:
                        raise _fail("following a log over HTTP needs its --vkey")
                    source = HttpTiles(url)
                    try:
                        report = follow(
                            source, verifier, seen=seen, submitters=submitters, progress=progress
                        )
                    finally:
                        source.close()
            cosigned_by = policy.check(report.note)
        except TamperError as exc:
            where = f" (entry {exc.index})" if exc.index is not None else ""
            raise _fail(f"the log was tampered with{where}: {exc}") from None
        except ChainError as exc:
            raise _fail(str(exc)) from None
        if state is not None and report.note:
            state.write_text(json.dumps([*seen, report.note], indent=1))
        typer.echo(report.summary())
        if witnesses:
            typer.echo(f"latest checkpoint cosigned by {', '.join(cosigned_by)}")
        if dir is not None and vkey is None:
            _err.print(
                "note: checked against the key stored with the log; pass --vkey to pin the key "
                "you trust",
                highlight=False,
            )
        if not submitter:
            _err.print(
                "note: signed entries checked against the submitter keys the log publishes; "
                "pass --submitter to pin the keys you trust",
                highlight=False,
            )

    @ledger.command()
    def cosign(
        dir: Path = typer.Option(..., "--dir", help="Directory of the log."),
        witness: list[str] = typer.Option(..., "--witness", help="Witness submission URL prefix."),
        witness_vkey: list[str] = typer.Option(
            ...,
            "--witness-vkey",
            help="Verifier key of the witness at the --witness of the same rank.",
        ),
    ) -> None:
        """Ask witnesses to cosign the latest checkpoint; print the cosigned checkpoint."""
        if len(witness) != len(witness_vkey):
            raise _fail(
                f"give one --witness-vkey per --witness, expected {len(witness)}, "
                f"got {len(witness_vkey)}"
            )
        try:
            keys = [witness_verifier(k) for k in witness_vkey]
            with Ledger.open(dir) as log:
                note = log.checkpoint_note()
                size = log.size
                for url, key in zip(witness, keys, strict=True):
                    lines = _request_cosignature(log, url, note, size)
                    note = log.add_cosignatures(size, lines, key)
                typer.echo(note, nl=False)
        except ChainError as exc:
            raise _fail(str(exc)) from None


def _read_state(state: Path | None) -> list[str]:
    """The signed checkpoints a ``--state`` file remembers: a JSON list of notes."""
    if state is None or not state.exists():
        return []
    try:
        seen = json.loads(state.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ChainError(f"the state file {state} must be JSON: {exc}") from None
    if not isinstance(seen, list) or not all(isinstance(note, str) for note in seen):
        raise ChainError(
            f"the state file {state} must hold a JSON list of signed checkpoints, "
            f"got {type(seen).__name__}"
        )
    return seen


def _check_seen(old: str, log: LogReader) -> None:
    from chain.checkpoint import Checkpoint

    checkpoint = Checkpoint.from_body(parse_note(old).text)
    if checkpoint.size > log.size:
        raise TamperError(f"the log shrank below size {checkpoint.size} seen before")
    if checkpoint.size and log.checkpoint(checkpoint.size).root != checkpoint.root:
        raise TamperError(
            f"the log's checkpoint of size {checkpoint.size} differs from the one seen before"
        )


def _request_cosignature(log: Ledger, url: str, note: str, size: int) -> str:
    """One add-checkpoint exchange, retried once with the size a 409 reports."""
    key = f"witness-size:{url}"
    old = int(log.store.get_meta(key) or 0)
    with httpx.Client(timeout=30.0) as client:
        for _ in range(2):
            proof = log.consistency_proof(old, size) if 0 < old < size else []
            body = add_checkpoint_request(old, proof, note)
            response = client.post(url.rstrip("/") + "/add-checkpoint", content=body)
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                "text/x.tlog.size"
            ):
                old = int(response.text.strip())
                continue
            if response.status_code != 200:
                raise ChainError(
                    f"witness {url} refused the checkpoint ({response.status_code}): "
                    f"{response.text.strip()[:200]}"
                )
            log.store.set_meta(key, str(size))
            return response.text
    raise ChainError(f"witness {url} keeps reporting a different size; try again later")
