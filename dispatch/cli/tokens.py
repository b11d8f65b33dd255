"""``wayhome tokens create --role police``: bearer tokens for the API."""

from __future__ import annotations

import typer
from rich.console import Console

from dispatch.auth import ROLES, TokenStore
from dispatch.errors import InvalidInput
from dispatch.settings import get_settings


def register(app: typer.Typer) -> None:
    tokens = typer.Typer(
        help="Bearer tokens for the HTTP API (stored hashed).", no_args_is_help=True
    )
    app.add_typer(tokens, name="tokens")

    @tokens.command("create")
    def create(
        role: str = typer.Option(..., help=f"One of {', '.join(ROLES)}."),
        label: str = typer.Option("", help="Who the token is for (shown in logs, not secret)."),
    ) -> None:
        """Create a token and print it once; only its SHA-256 is kept."""
        store = TokenStore(get_settings().data_dir / "tokens.sqlite3")
        try:
            token = store.create(role, label)
        except InvalidInput as error:
            Console(stderr=True).print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        finally:
            store.close()
        typer.echo(token)
