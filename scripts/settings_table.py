"""The README's settings table, generated from ``dispatch.settings.Settings``.

    python scripts/settings_table.py           # print the table
    python scripts/settings_table.py --write   # rewrite it in README.md, between the markers

Each row is one field: its environment variable, its default and its description.
``tests/foundation/test_readme.py`` fails when the README's table misses a field.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
BEGIN = "<!-- settings table -->"
END = "<!-- /settings table -->"


def variable_name(name: str, field: FieldInfo, env_prefix: str) -> str:
    """The environment variable a field reads: its first alias, else prefix + NAME."""
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        first = choices[0]
        return first if isinstance(first, str) else str(first)
    if isinstance(alias, str):
        return alias
    return f"{env_prefix}{name}".upper()


def default_text(field: FieldInfo) -> str:
    """The default as a reader would type it."""
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        home = str(Path.home())
        text = str(value)
        return "~" + text[len(home) :] if text.startswith(home) else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every field of the settings class, in its order."""
    from dispatch.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [
        (variable_name(name, field, prefix), default_text(field), field.description or "")
        for name, field in Settings.model_fields.items()
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    """The markdown table, header included."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for variable, default, meaning in rows():
        default_cell = f"`{_cell(default)}`" if default else ""
        lines.append(f"| `{variable}` | {default_cell} | {_cell(meaning)} |")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The part of the README between the markers (empty if they are missing)."""
    if BEGIN not in text or END not in text:
        return ""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_readme() -> None:
    """Put the current table between the markers in README.md."""
    text = README.read_text()
    if BEGIN not in text:
        raise SystemExit(f"README.md has no {BEGIN} marker to put the settings table at.")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else rest
    README.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    if "--write" in sys.argv[1:]:
        write_readme()
        print(f"settings table written to {README}")
    else:
        print(table())
