"""``wayhome witness``: run a C2SP tlog-witness over HTTP (uvicorn + FastAPI).

The witness keeps its cosigner key (``witness.key``, created on first run, mode 0600) and its
view of each log (``state.db``) in ``--dir``; it follows the logs whose verifier keys are given
with ``--log``, and answers ``POST /add-checkpoint`` as the spec says (see
``chain.witness``). Its verifier key, for the logs' and clients' policies, is printed at start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer
from fastapi import FastAPI, Request
from fastapi.responses import Response

from chain.cosignature import CosignatureSigner
from chain.errors import ChainError, WitnessError
from chain.note import Verifier
from chain.witness import Witness

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def witness_app(witness: Witness) -> FastAPI:
    """The witness's HTTP interface."""
    app = FastAPI(title="wayhome witness", docs_url=None, redoc_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response("request body too large\n", status_code=413, media_type="text/plain")
        try:
            cosignature = witness.add_checkpoint(body)
        except WitnessError as exc:
            if exc.status == 409 and exc.size is not None:
                # Set verbatim: the spec wants exactly this type, no charset parameter.
                return Response(
                    f"{exc.size}\n", status_code=409, headers={"Content-Type": "text/x.tlog.size"}
                )
            return Response(f"{exc}\n", status_code=exc.status, media_type="text/plain")
        return Response(cosignature, media_type="text/plain; charset=utf-8")

    return app


def open_witness(directory: Path, name: str, logs: list[str]) -> Witness:
    """The witness kept in ``directory``, creating its key on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "witness.key"
    if key_path.exists():
        signer = CosignatureSigner.from_skey(key_path.read_text().strip())
        if signer.name != name:
            raise ChainError(f"the witness key in {directory} is named {signer.name}, not {name}")
    else:
        signer = CosignatureSigner.generate(name)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer.skey() + "\n")
    followed: dict[str, list[Verifier]] = {}
    for vkey in logs:
        verifier = Verifier.from_vkey(vkey)
        followed.setdefault(verifier.name, []).append(verifier)
    return Witness(signer, followed, directory / "state.db")


def register(app: typer.Typer) -> None:
    @app.command()
    def witness(
        dir: Path = typer.Option(..., "--dir", help="Directory of the witness's key and state."),
        name: str = typer.Option(
            ..., "--name", help="The witness's name, e.g. witness.example/w1."
        ),
        log: list[str] = typer.Option(..., "--log", help="Verifier key of a log to follow."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(7380, help="Port to listen on."),
    ) -> None:
        """Serve a C2SP tlog-witness: cosign checkpoints consistent with what it saw."""
        import uvicorn

        try:
            state = open_witness(dir, name, log)
        except ChainError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(state.signer.verifier().vkey())
        uvicorn.run(witness_app(state), host=host, port=port, log_level="warning")
