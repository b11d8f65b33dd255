"""The ``wayhome`` command line.

Each family of commands lives in a module of its own beside this one and registers itself on
the root application below.
"""

from __future__ import annotations

import typer

from dispatch.cli import broker, demo, ledger, reach, serve, subscribers, tokens, witness

app = typer.Typer(
    name="wayhome",
    help="Alert dispatch for missing children: report once, reach everyone inside, close the loop.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Alert dispatch for missing children: report once, reach everyone inside, close the loop."""


broker.register(app)
ledger.register(app)
witness.register(app)
reach.register(app)
serve.register(app)
demo.register(app)
tokens.register(app)
subscribers.register(app)


def main() -> None:
    """Entry point of the ``wayhome`` console script."""
    app()
