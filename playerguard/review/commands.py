"""`playerguard review`: the review console on this machine, over the local outbox.

Binding anything but loopback needs `--allow-remote` and a token (`--token` or PLAYERGUARD_REVIEW_TOKEN):
clients then send `Authorization: Bearer <token>`, or open `http://host:port/?token=<token>` once, which
sets an HttpOnly cookie. Put TLS in front of it (a reverse proxy) off a trusted network.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from playerguard.command_options import HomeOption, settings_for
from playerguard.errors import ConfigError
from playerguard.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from playerguard.review.app import Console


def build_console(settings: Settings, *, reviewer: str | None = None, token: str | None = None) -> Console:
    """The console over the settings' home: outbox indexes prepared, the lake read through the backend's
    SQL engine (DuckDB locally). Raises DataError when there is no outbox yet."""
    from playerguard.backends import backend_for
    from playerguard.review.activity import LakeActivity
    from playerguard.review.app import Console
    from playerguard.review.settings import ReviewSettings

    review_settings = ReviewSettings()
    console = Console(
        home=settings.home,
        reviewer=reviewer or review_settings.reviewer or _login_name(),
        token=token if token is not None else review_settings.review_token,
        activity=LakeActivity(lambda: backend_for(settings).sql_engine()),
    )
    console.queue.prepare()
    return console


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "reviewer"


def check_binding(host: str, allow_remote: bool, token: str | None) -> None:
    """Loopback is the default; anything else must be asked for, and guarded by a token."""
    from playerguard.review.security import is_loopback

    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"--host {host} exposes the review queue beyond this machine: add --allow-remote and a token"
        )
    if not token or len(token) < 16:
        raise ConfigError(
            "--allow-remote needs a token of 16 characters or more (--token or PLAYERGUARD_REVIEW_TOKEN)"
        )


def run_console(app: Starlette, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve `app` with uvicorn until interrupted; port 0 picks a free one (printed through `on_ready`)."""
    import uvicorn

    from playerguard.inference.server import bind_listener

    listener = bind_listener(host, port)
    bound = listener.getsockname()[1]
    if on_ready is not None:
        on_ready(f"http://{'[' + host + ']' if ':' in host else host}:{bound}")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])


def review_command(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8090,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but 127.0.0.1 needs --allow-remote and a token.")
    ] = "127.0.0.1",
    home: HomeOption = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding an address other than loopback.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="PLAYERGUARD_REVIEW_TOKEN", help="Token clients must present (Bearer header or ?token=)."
        ),
    ] = None,
    reviewer: Annotated[
        str | None,
        typer.Option(
            envvar="PLAYERGUARD_REVIEWER",
            help="Name on each verdict (a proxy may send X-Playerguard-Reviewer).",
        ),
    ] = None,
) -> None:
    """Serve the review console: the queue of flags, each flag with its evidence, confirm and dismiss."""
    from playerguard.review.app import create_app

    check_binding(host, allow_remote, token)
    settings = settings_for(home)
    console = build_console(settings, reviewer=reviewer, token=token)

    def ready(url: str) -> None:
        typer.echo(f"review console for {settings.home / 'outbox.sqlite'} on {url}")
        if token:
            typer.echo(f"  first visit: {url}/?token=<your token>   or send Authorization: Bearer <token>")
        typer.echo("  keys: j/k next/previous · o open · c confirm · d dismiss · u queue   (Ctrl-C stops)")

    run_console(create_app(console), host, port, ready)
