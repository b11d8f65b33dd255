"""The tiled read layout of a log (c2sp.org/tlog-tiles): tile paths, widths and entry bundles.

A tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes of tree level
``8 * L``: at level 0 the leaf hashes, above that the roots of full tiles of the level below.
Paths spell ``N`` in 3-digit groups, all but the last prefixed by ``x``
(``1234067`` -> ``x001/x234/067``), and in one way only: a leading group of zeros
(``x000/005``) is refused, so that each tile has one path and one cache entry. The rightmost
tiles of a tree are partial, served as ``.p/<W>`` with ``W`` in 1..255. Entry bundles sit at
``tile/entries/<N>[.p/<W>]`` and hold the level-0 tile's entries, each prefixed by its
big-endian uint16 length.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chain.errors import ChainError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_BYTES = 0xFFFF
"""An entry bundle prefixes each entry with a uint16 length: no entry can be longer."""

_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


@dataclass(frozen=True)
class TileId:
    """A tile, or an entry bundle when ``level`` is ``None``; ``width`` 256 means full."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def path(self) -> str:
        name = "entries" if self.level is None else str(self.level)
        suffix = "" if self.width == TILE_WIDTH else f".p/{self.width}"
        return f"tile/{name}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """A tile index as 3-digit path elements, all but the last prefixed by ``x``."""
    if index < 0:
        raise ChainError(f"a tile index must be non-negative, got {index}")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def parse_path(path: str) -> TileId:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
    match = _PATH.fullmatch(path.lstrip("/"))
    if match is None:
        raise ChainError(f"not a tile path: {path!r}; expected tile/<L>/<N>[.p/<W>]")
    name, index_text, width_text = match.groups()
    level = None if name == "entries" else int(name)
    if level is not None and level > 63:
        raise ChainError(f"a tile level must be within 0..63, got {level}")
    width = int(width_text) if width_text else TILE_WIDTH
    if width_text and width >= TILE_WIDTH:
        raise ChainError(f"a partial tile width must be within 1..255, got {width}")
    index = int(index_text.replace("x", "").replace("/", ""))
    if encode_index(index) != index_text:
        raise ChainError(
            f"a tile index must be spelled without leading zero groups, expected "
            f"{encode_index(index)} for index {index}, got {index_text}"
        )
    return TileId(level, index, width)


def tile_width(level: int, index: int, size: int) -> int:
    """The width of tile ``(level, index)`` in a tree of ``size`` leaves: 0 when it is empty."""
    hashes_at_level = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, hashes_at_level - index * TILE_WIDTH))


def tiles_for_size(size: int) -> Iterator[TileId]:
    """Every tile of a tree of ``size`` leaves, full and partial, level by level."""
    level = 0
    while True:
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            return
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            yield TileId(level, index, tile_width(level, index, size))
        level += 1


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise ChainError(f"an entry must be at most {MAX_ENTRY_BYTES} bytes, got {len(entry)}")
        parts.append(struct.pack(">H", len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle."""
    entries = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise ChainError(f"entry bundle ends inside a length prefix at byte {at}")
        (length,) = struct.unpack_from(">H", data, at)
        at += 2
        if at + length > len(data):
            raise ChainError(f"entry bundle ends inside an entry at byte {at}")
        entries.append(data[at : at + length])
        at += length
    return entries
