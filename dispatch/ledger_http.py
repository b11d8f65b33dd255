"""The dispatch log over HTTP: the C2SP tlog-tiles read layout, and offline proof bundles.

Routes, relative to where the router is mounted (the log's URL prefix):

- ``GET /checkpoint``: the latest signed checkpoint, ``text/plain; charset=utf-8``, cached
  for a few seconds at most;
- ``GET /submitters``: the verifier keys of the submitters whose signed entries the log
  accepts, one a line, ``text/plain; charset=utf-8``;
- ``GET /tile/<L>/<N>[.p/<W>]`` and ``GET /tile/entries/<N>[.p/<W>]``: tiles and entry
  bundles, ``application/octet-stream``, immutable; bundles gzip-encoded for clients that
  accept it;
- ``GET /proof/<index>[?size=N]``: a ``c2sp.org/tlog-proof@v1`` bundle;
- ``GET /proof/consistency/<size1>/<size2>``: a consistency proof, one base64 hash a line.

Any tlog client can follow the log from ``checkpoint`` and the tiles; ``wayhome ledger verify
--url`` does, and checks every signed entry against ``submitters`` too.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from chain.errors import ChainError, ProofError, StoreError
from chain.ledger import LogReader
from chain.note import b64encode
from chain.tiles import parse_path

CHECKPOINT_CACHE = "public, max-age=2"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
TEXT = "text/plain; charset=utf-8"


def ledger_router(reader: LogReader | Callable[[], LogReader]) -> APIRouter:
    """A router serving one log; ``reader`` is a :class:`LogReader` or a factory of one."""
    router = APIRouter(tags=["ledger"])
    get_reader: Callable[[], LogReader] = reader if callable(reader) else (lambda: reader)

    @router.get("/checkpoint", response_class=PlainTextResponse)
    def checkpoint() -> Response:
        try:
            note = get_reader().checkpoint_note()
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(note, media_type=TEXT, headers={"Cache-Control": CHECKPOINT_CACHE})

    @router.get("/submitters", response_class=PlainTextResponse)
    def submitters() -> Response:
        keys = "".join(v.vkey() + "\n" for v in get_reader().submitters)
        return Response(keys, media_type=TEXT, headers={"Cache-Control": CHECKPOINT_CACHE})

    @router.get("/tile/{path:path}")
    def tile(path: str, request: Request) -> Response:
        try:
            tile_id = parse_path(f"tile/{path}")
        except ChainError as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            data = get_reader().read_tile(tile_id)
        except ChainError as exc:
            raise HTTPException(404, str(exc)) from None
        headers = {"Cache-Control": IMMUTABLE_CACHE}
        # Entry bundles compress well (tlog-tiles says they SHOULD be); hashes do not.
        if tile_id.level is None and "gzip" in request.headers.get("accept-encoding", ""):
            data = gzip.compress(data, compresslevel=6)
            headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(data, media_type="application/octet-stream", headers=headers)

    @router.get("/proof/consistency/{size1}/{size2}", response_class=PlainTextResponse)
    def consistency(size1: int, size2: int) -> Response:
        try:
            proof = get_reader().consistency_proof(size1, size2)
        except ProofError as exc:
            raise HTTPException(400, str(exc)) from None
        body = "".join(b64encode(h) + "\n" for h in proof)
        return Response(body, media_type=TEXT, headers={"Cache-Control": IMMUTABLE_CACHE})

    @router.get("/proof/{index}", response_class=PlainTextResponse)
    def inclusion(index: int, size: int | None = Query(default=None, ge=0)) -> Response:
        try:
            bundle = get_reader().proof_bundle(index, size)
        except ProofError as exc:
            raise HTTPException(400, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(bundle, media_type=TEXT)

    return router
