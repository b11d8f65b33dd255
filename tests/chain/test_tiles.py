"""The tlog-tiles layout: paths, partial widths and entry bundles, per c2sp.org/tlog-tiles."""

from __future__ import annotations

import pytest

from chain.errors import ChainError
from chain.tiles import (
    TileId,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_path,
    tiles_for_size,
)


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_a_tile_index_is_spelled_in_x_prefixed_3_digit_groups(index: int, path: str) -> None:
    assert encode_index(index) == path


def test_paths_round_trip_full_and_partial_tiles_and_bundles() -> None:
    for tile in (TileId(0, 5), TileId(2, 1234067, 17), TileId(None, 1000), TileId(None, 3, 255)):
        assert parse_path(tile.path()) == tile
    assert TileId(1, 1234067, 12).path() == "tile/1/x001/x234/067.p/12"
    assert TileId(None, 5).path() == "tile/entries/005"


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/5",
        "tile/0/0005",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/001/000",
        "tile/entries/x000",
        "tiles/0/000",
    ],
)
def test_a_malformed_tile_path_is_refused(path: str) -> None:
    with pytest.raises(ChainError):
        parse_path(path)


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("tile/0/x000/005", "005"),
        ("tile/entries/x000/x001/234", "x001/234"),
        ("tile/2/x000/x000/000.p/3", "000"),
    ],
)
def test_a_tile_index_with_a_leading_zero_group_is_refused(path: str, canonical: str) -> None:
    with pytest.raises(ChainError, match=f"expected {canonical} for index .*, got x000"):
        parse_path(path)


def test_a_tree_of_70000_has_the_tiles_of_the_spec_example() -> None:
    tiles = list(tiles_for_size(70000))
    level0 = [t for t in tiles if t.level == 0]
    assert len([t for t in level0 if t.width == 256]) == 273
    assert level0[-1] == TileId(0, 273, 112)
    assert [t for t in tiles if t.level == 1] == [TileId(1, 0), TileId(1, 1, 17)]
    assert [t for t in tiles if t.level == 2] == [TileId(2, 0, 1)]


def test_a_tree_of_256_has_one_full_tile_and_a_partial_tile_above() -> None:
    assert list(tiles_for_size(256)) == [TileId(0, 0), TileId(1, 0, 1)]


def test_an_entry_bundle_is_uint16_length_prefixed_entries() -> None:
    entries = [b"", b"a", b"x" * 65535]
    bundle = encode_bundle(entries)
    assert bundle[:5] == b"\x00\x00\x00\x01a"
    assert decode_bundle(bundle) == entries


def test_an_entry_too_long_for_a_bundle_is_refused() -> None:
    with pytest.raises(ChainError, match="at most 65535 bytes"):
        encode_bundle([b"x" * 65536])


def test_a_truncated_bundle_is_refused() -> None:
    with pytest.raises(ChainError, match="ends inside an entry"):
        decode_bundle(b"\x00\x05abc")
