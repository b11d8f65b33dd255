"""``wayhome tokens create`` and the service commands on the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatch.auth import TokenStore
from dispatch.cli import app
from dispatch.settings import get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WAYHOME_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_tokens_create_prints_a_token_that_authenticates_with_its_role(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["tokens", "create", "--role", "analyst", "--label", "audit"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    principal = TokenStore(data_dir / "tokens.sqlite3").authenticate(f"Bearer {token}")
    assert (principal.role, principal.label) == ("analyst", "audit")


def test_tokens_create_refuses_an_unknown_role_with_a_sentence(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["tokens", "create", "--role", "admin"])
    assert result.exit_code == 2
    assert "role must be one of police, platform, analyst" in result.output


def test_serve_and_demo_are_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "tokens"):
        assert command in result.output
