"""The console's Starlette app: routes for the queue, a flag and a verdict, behind the access token and
security headers. Handlers are plain functions run in Starlette's thread pool (SQLite, DuckDB and Parquet
calls block); the verdict post reads its form first, then does the same."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from playerguard.errors import DataError
from playerguard.review import pages, static
from playerguard.review.activity import Activity, LakeActivity
from playerguard.review.flag_page import FlagView, flag_page
from playerguard.review.population import SnapshotPopulation
from playerguard.review.queue import OutboxQueue, QueueFilter
from playerguard.review.security import (
    CSRF_COOKIE,
    SECURITY_HEADERS,
    TOKEN_COOKIE,
    csrf_ok,
    csrf_token,
    presented_token,
    reviewer_name,
    same_origin,
    token_ok,
)
from playerguard.review.verdicts import VerdictConflict, record_verdict
from playerguard.stream.commands import LABELLED_MODEL
from playerguard.stream.notifiers.local import OutboxNotifier

MAX_FORM_BYTES = 16 * 1024


@dataclass
class Console:
    """What the routes read: the outbox, the population snapshot and the lake, under one home."""

    home: Path
    reviewer: str
    token: str | None = None
    activity: LakeActivity | None = None
    queue: OutboxQueue = field(init=False)
    population: SnapshotPopulation = field(init=False)

    def __post_init__(self) -> None:
        from playerguard.features.online.local import SNAPSHOT_NAME

        self.queue = OutboxQueue.from_home(self.home)
        self.population = SnapshotPopulation(self.home / SNAPSHOT_NAME)

    def outbox(self) -> OutboxNotifier:
        # One per request: the notifier's SQLite connection must stay on the thread that opened it.
        return OutboxNotifier.from_home(self.home)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


def _page_number(text: str | None) -> int:
    try:
        return max(1, int(text or 1))
    except ValueError:
        raise DataError(f"page must be a number, not {text!r}") from None


def _banner(console: Console, done: str | None) -> str:
    if not done:
        return ""
    record = console.queue.last_review(done)
    if record is None:
        return ""
    row = console.queue.row(record.flag_id)
    return pages.notice(record, row.player_id, row.model == LABELLED_MODEL)


def _flag_view(console: Console, flag_id: str, filters: QueueFilter, csrf: str) -> FlagView:
    outbox = console.outbox()
    try:
        entry = outbox.entry(flag_id)
    finally:
        outbox.close()
    flag = entry.flag
    previous, following = console.queue.neighbours(filters, flag.flag_id)
    features = [r for r in flag.reasons if r.get("kind", "feature") == "feature" and r.get("name")]
    placements = {str(r["name"]): console.population.place(str(r["name"]), r.get("value")) for r in features}
    day = date.fromisoformat(flag.event_timestamp[:10])
    trend = None
    if console.activity is not None:
        activity = console.activity.recent(flag.player_id, day)
        if flag.model == LABELLED_MODEL and features and not activity.problem:
            trend = console.activity.trend(flag.player_id, day, str(features[0]["name"]))
    else:
        activity = Activity([day.isoformat()], problem="no event lake configured")
    return FlagView(
        entry=entry,
        filters=filters,
        previous=previous,
        following=following,
        last_review=console.queue.last_review(flag.flag_id),
        history=console.queue.history(flag.player_id),
        activity=activity,
        placements=placements,
        population_available=console.population.available,
        csrf=csrf,
        trend=trend,
    )


def _with_csrf(response: Response, token: str, new: bool) -> Response:
    if new:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def create_app(console: Console) -> Starlette:
    """The console over `console.home`; call `console.queue.prepare()` first (the command does)."""

    def queue_route(request: Request) -> Response:
        reviewer = reviewer_name(request, console.reviewer)
        try:
            filters = QueueFilter.from_query(request.query_params)
            number = _page_number(request.query_params.get("page"))
        except DataError as error:
            return _html(pages.error_page(400, str(error), reviewer=reviewer), 400)
        page = console.queue.page(filters, number)
        banner = _banner(console, request.query_params.get("done"))
        body = pages.queue_page(page, filters, console.queue.choices(), reviewer=reviewer, banner=banner)
        return _html(body)

    def flag_route(request: Request) -> Response:
        reviewer = reviewer_name(request, console.reviewer)
        token, new = csrf_token(request)
        try:
            filters = QueueFilter.from_query(request.query_params)
            view = _flag_view(console, request.path_params["flag_id"], filters, token)
        except DataError as error:
            return _html(pages.error_page(404, str(error), reviewer=reviewer), 404)
        banner = _banner(console, request.query_params.get("done"))
        return _with_csrf(_html(flag_page(view, reviewer=reviewer, banner=banner)), token, new)

    def decide(request: Request, form: dict[str, str]) -> Response:
        reviewer = reviewer_name(request, console.reviewer)
        flag_id = request.path_params["flag_id"]
        filters = QueueFilter.from_query(form)
        outbox = console.outbox()
        try:
            result = record_verdict(
                outbox,
                console.queue,
                console.home,
                flag_id,
                form.get("verdict", ""),
                reviewer=reviewer,
                note=form.get("note", "").strip()[:2000],
                override=form.get("override") == "1",
            )
        except VerdictConflict as error:
            view = _flag_view(console, flag_id, filters, form["csrf"])
            return _html(flag_page(view, reviewer=reviewer, error=str(error)), 409)
        finally:
            outbox.close()
        done = result.entry.flag.flag_id
        following = console.queue.neighbours(filters, done)[1]
        target = pages.flag_path(following) if following else "/"
        return RedirectResponse(f"{target}?{urlencode({**filters.params(), 'done': done})}", status_code=303)

    async def verdict_route(request: Request) -> Response:
        reviewer = reviewer_name(request, console.reviewer)
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            return _html(pages.error_page(415, "post the verdict form", reviewer=reviewer), 415)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _html(pages.error_page(413, "the form is too large", reviewer=reviewer), 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if not same_origin(request) or not csrf_ok(request, form.get("csrf", "")):
            message = "the form's CSRF token is missing or stale: reload the flag page and try again"
            return _html(pages.error_page(403, message, reviewer=reviewer), 403)
        try:
            return await run_in_threadpool(decide, request, form)
        except DataError as error:
            return _html(pages.error_page(400, str(error), reviewer=reviewer), 400)

    def asset(body: str, media_type: str) -> Callable[[Request], Response]:
        return lambda request: Response(body, media_type=media_type)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if console.activity is not None:
            console.activity.close()

    routes = [
        Route("/", queue_route),
        Route("/flags/{flag_id}", flag_route),
        Route("/flags/{flag_id}/verdict", verdict_route, methods=["POST"]),
        Route("/static/review.css", asset(static.CSS, "text/css")),
        Route("/static/review.js", asset(static.JS, "text/javascript")),
        Route("/healthz", lambda request: PlainTextResponse("ok")),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
    ]
    middleware = [Middleware(BaseHTTPMiddleware, dispatch=_guard(console.token))]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _guard(token: str | None) -> Callable[[Request, Any], Awaitable[Response]]:
    """Security headers on every response; with a token, nothing is served without it. `?token=` on a
    first visit is swapped for an HttpOnly cookie and a redirect, so the token leaves the address bar."""

    async def dispatch(request: Request, call_next: Any) -> Response:
        response: Response
        if token is not None and not token_ok(token, presented_token(request)):
            response = PlainTextResponse("a review token is required (see `playerguard review --help`)", 401)
        elif token is not None and "token" in request.query_params:
            query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    return dispatch
