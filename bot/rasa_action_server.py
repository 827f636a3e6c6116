"""The HTTP side of tier0's Rasa actions: rasa-sdk's own webhook app, in one process.

rasa-sdk's `run()` starts Sanic worker processes that import the actions afresh; tier0's
actions share one loaded embedder, knowledge index and store, so the app is served in a
single process instead (Sanic's `single_process`), with the services built before the
first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic

from bot.config import Settings
from bot.rasa_actions import ACTIONS, desk_services, services, use_services

WEBHOOK_PATH = "/webhook"


def action_executor() -> ActionExecutor:
    executor = ActionExecutor()
    for action in ACTIONS:
        executor.register_action(action)
    return executor


def action_app() -> Sanic[Any, Any]:
    """rasa-sdk's app (`/webhook`, `/actions`, `/health`) with tier0's actions."""
    return cast("Sanic[Any, Any]", create_app(action_executor(), cors_origins=None))


def serve_actions(
    settings: Settings,
    *,
    port: int,
    host: str = "127.0.0.1",
    announce: Callable[[str], object] = print,
) -> None:
    use_services(lambda: desk_services(settings))
    services()  # a broken store or knowledge base stops the start, not the first action
    app = action_app()
    names = ", ".join(action.action_name for action in ACTIONS)
    announce(f"tier0 actions ({names}) at http://{host}:{port}{WEBHOOK_PATH}")
    app.run(host=host, port=port, single_process=True, access_log=False, motd=False)
