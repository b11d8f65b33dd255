"""``wayhome subscribers import`` imports a file and lists the rows it refused."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.settings import get_settings
from subscribers import SqliteRegistry


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WAYHOME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("WAYHOME_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_import_writes_good_rows_lists_bad_ones_and_exits_1(data_dir: Path, tmp_path: Path):
    path = tmp_path / "subs.csv"
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(
            [
                ["id", "kind", "lon", "lat", "channel_kind", "channel_url", "language"],
                ["p1", "device", "113.6", "34.7", "sse", "", "zh"],
                ["p2", "device", "113.6", "95", "sse", "", "zh"],
            ]
        )

    result = CliRunner().invoke(app, ["subscribers", "import", str(path)])

    assert result.exit_code == 1
    assert "1 subscribers imported" in result.output
    assert "latitude must be within -90..90, got 95.0" in " ".join(result.output.split())
    with SqliteRegistry(data_dir / "subscribers.sqlite3") as registry:
        assert [s.id for s in registry.iter_all()] == ["p1"]


def test_import_of_a_missing_file_says_so_and_exits_2(data_dir: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["subscribers", "import", str(tmp_path / "none.csv")])

    assert result.exit_code == 2
    assert "there is no such file" in " ".join(result.output.split())
