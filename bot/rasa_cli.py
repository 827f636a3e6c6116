"""The Rasa commands of `tier0`: training with Rasa, serving a Rasa model, the action server.

Kept apart from `bot/cli.py`, which wires them in: `tier0 nlu train --backend rasa`,
`tier0 nlu rasa-serve`, `tier0 actions serve`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.cli_errors import fail
from bot.config import Settings

actions_app = typer.Typer(help="Rasa custom actions backed by tier0.", no_args_is_help=True)
console = Console()

DEFAULT_RASA_PORT = 5005


def _port(port: int) -> int:
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535, not {port}")
    return port


def train_with_rasa(data: list[Path] | None, epochs: int, force: bool) -> None:
    """`tier0 nlu train --backend rasa`: a DIET model of the same training data."""
    from nlu.rasa_training import DietPipeline, RasaError, train, write_project
    from nlu.training_data import BUNDLED_NLU_DATA, NluDataError

    if epochs < 1:
        fail(f"--epochs must be at least 1, not {epochs}")
    settings = Settings()
    sources = data or [settings.nlu_data or BUNDLED_NLU_DATA]
    try:
        project = write_project(sources, settings.rasa_dir, DietPipeline(epochs=epochs))
        shown = ", ".join(str(source) for source in sources)
        console.print(f"Training Rasa NLU (DIET, {epochs} epochs) from {shown} …")
        model = train(project, force=force)
    except (NluDataError, RasaError) as error:
        fail(str(error))
    if model.trained:
        console.print(
            f"Rasa model {model.fingerprint} trained in {model.seconds:.0f} s: {model.path}"
        )
    else:
        console.print(f"Rasa model {model.fingerprint} already up to date: {model.path}")


def rasa_serve(
    port: Annotated[int, typer.Option(help="HTTP port of the Rasa server.")] = DEFAULT_RASA_PORT,
    model: Annotated[
        Path | None, typer.Option(help="Model to serve (default: the one tier0 trained).")
    ] = None,
) -> None:
    """Serve the Rasa model (`rasa run --enable-api`), for TIER0_NLU_BACKEND=rasa."""
    from nlu.rasa_training import RasaError, RasaProject, rasa_environment, serve_command

    settings = Settings()
    model = model or RasaProject(settings.rasa_dir).model_path
    if not model.is_file():
        fail(f"no Rasa model at {model}: run `tier0 nlu train --backend rasa` first")
    try:
        command = serve_command(model, port=_port(port))
    except RasaError as error:
        fail(str(error))
    console.print(f"Rasa serving {model} at http://127.0.0.1:{port}/model/parse")
    # Rasa takes this process over, so Ctrl-C and a supervisor's signals reach it directly.
    os.execve(command[0], command, rasa_environment())


@actions_app.command("serve")
def actions_serve(
    port: Annotated[int, typer.Option(help="HTTP port of the action server.")] = 5055,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0 when Rasa runs elsewhere).")
    ] = "127.0.0.1",
) -> None:
    """Serve tier0's custom actions to a Rasa assistant (its endpoints.yml action_endpoint)."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from bot.rasa_action_server import serve_actions
    from knowledge.articles import ArticleError

    settings = Settings()
    try:
        serve_actions(settings, port=_port(port), host=host, announce=console.print)
    except ArticleError as error:
        fail(str(error))
    except ArgumentError as error:
        fail(f"TIER0_DATABASE_URL is not a database URL: {error}")
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        fail(f"cannot open the ticket store: {reason}")
    except OSError as error:
        fail(f"cannot serve on port {port}: {error.strerror or error}")
