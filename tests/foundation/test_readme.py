"""The README stays in step with the code: every setting is in its table with its default."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_table", _REPO_ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_rows() -> dict[str, str]:
    """Variable -> default, read from the README's settings table."""
    module = _settings_table()
    table = module.readme_table((_REPO_ROOT / "README.md").read_text())
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) >= 2:
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def test_readme_has_a_settings_table() -> None:
    assert _readme_rows(), "README.md must hold the settings table between its markers"


_ROWS = _settings_table().rows()


@pytest.mark.parametrize(("variable", "default", "meaning"), _ROWS, ids=[row[0] for row in _ROWS])
def test_every_setting_is_in_the_readme_table_with_its_default(
    variable: str, default: str, meaning: str
) -> None:
    rows = _readme_rows()
    fix = "run: python scripts/settings_table.py --write"
    assert variable in rows, f"README.md's settings table lacks {variable}; {fix}"
    assert rows[variable] == default, (
        f"README.md gives {variable} the default {rows[variable]!r}, the code {default!r}; {fix}"
    )
