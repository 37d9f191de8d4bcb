"""The local scoring server: SageMaker's container contract (`GET /ping`, `POST /invocations`) plus the
runtime API path (`POST /endpoints/{name}/invocations`), so `boto3.client("sagemaker-runtime",
endpoint_url=...)` is one client for this server and for SageMaker.

Uvicorn + Starlette: requests are parsed, scored and encoded in a worker thread (`score_request`, the same
function the SageMaker handlers call), so /ping stays responsive while a batch is scored; the answer's
`Server-Timing` header says how long scoring and encoding took. Request options come in the
`X-Amzn-SageMaker-Custom-Attributes` header, as SageMaker forwards them (`reasons=all`: feature reasons for
every row, not only those the policy acts on). The bundle sits
in a `BundleHolder`; `POST /admin/reload` (loopback clients only, with a loopback Host and no foreign Origin,
so a web page cannot trigger it) and SIGHUP build the new bundle first and then swap one reference, so a
request in flight finishes on the bundle it started with. With `PLAYERGUARD_BUNDLE_DIGEST` set, a bundle
whose manifest is not the pinned one is refused on load and on reload.

With `workers` > 1 (`playerguard serve --workers N`, or `PLAYERGUARD_SERVE_WORKERS`; 0 is one per core, the
layout SageMaker's container contract expects of a model server), that many worker processes share the one
listening socket, each with its own copy of the bundle; the main process forwards SIGHUP to every worker, and
`POST /admin/reload` on any worker reloads it and then every worker (by a SIGHUP to the main process).

Stalled clients are shed: request headers must arrive within `header_timeout` seconds and the body within
`Limits.body_timeout` (else 408 and the connection is closed), idle kept-alive connections close after
`keep_alive` seconds, and over `max_connections` open connections new requests get 503.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from playerguard.errors import ConfigError, PlayerguardError
from playerguard.inference.payloads import (
    CUSTOM_ATTRIBUTES_HEADER,
    DEFAULT_LIMITS,
    JSON_TYPE,
    Limits,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
    check_accept,
    check_body_size,
    encode_error,
    encode_predictions,
    reasons_option,
)
from playerguard.inference.sagemaker_inference import ServingBundle, load_serving_bundle, score_request
from playerguard.settings import Settings

log = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
SCORING_THREADS = 8
"""Requests one app scores at once; more wait their turn. XGBoost releases the GIL, so a second request can use
another core while the first is in Python; beyond a few, threads only interleave requests."""


class BundleHolder:
    """The bundle being served. `reload` builds a new one with `loader`, then swaps the reference; a failed
    reload leaves the current bundle in place. Reloads run one at a time."""

    def __init__(self, loader: Callable[[], ServingBundle], current: ServingBundle | None = None) -> None:
        self._loader = loader
        self._current = current
        self._reload_lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def current(self) -> ServingBundle | None:
        return self._current

    def reload(self) -> ServingBundle:
        with self._reload_lock:
            try:
                fresh = self._loader()
            except Exception as error:
                self.last_error = str(error)
                raise
            self._current, self.last_error = fresh, None
            log.info("serving bundle %s (models %s)", fresh.bundle.path, fresh.bundle.versions)
            return fresh

    def reload_logged(self) -> None:
        """Reload, logging instead of raising (for SIGHUP, which has no one to answer)."""
        try:
            self.reload()
        except PlayerguardError as error:  # the old bundle keeps serving; the operator reads the log
            log.error("reload failed, still serving the previous bundle: %s", error)
        except Exception:
            log.exception("reload failed, still serving the previous bundle")


@dataclass(frozen=True)
class BundleSource:
    """Where the served bundle comes from: a bundle directory or `model.tar.gz`, or (path None) the
    registry's champions, built into `<home>/bundle` with `feature_set`."""

    settings: Settings
    path: Path | None = None
    feature_set: str | None = None

    def load(self) -> ServingBundle:
        """The bundle, checked against `settings.bundle_digest` when set; a bundle built from the registry is
        otherwise checked against the digest it had when built."""
        if self.path is not None:
            return load_serving_bundle(self.path, self.settings.bundle_digest)
        from playerguard.inference.bundle import bundle_digest

        built = build_registry_bundle(self.settings, self.feature_set)
        return load_serving_bundle(built, self.settings.bundle_digest or bundle_digest(built))


def build_registry_bundle(settings: Settings, feature_set: str | None = None) -> Path:
    """Build the champions into a fresh directory, then put it in place of `<home>/bundle`."""
    import shutil
    import tempfile

    from playerguard.inference.bundle import build_bundle

    settings.home.mkdir(parents=True, exist_ok=True)
    target = settings.home / "bundle"
    staging = Path(tempfile.mkdtemp(prefix="bundle.next-", dir=settings.home))
    try:
        build_bundle(settings, staging / "bundle", feature_set=feature_set)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = staging / "previous"
    if target.exists():
        target.rename(retired)
    (staging / "bundle").rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


# ---- responses ---------------------------------------------------------------------------------------------


def _error(error: RequestError, runtime_api: bool) -> Response:
    """The error body; on the runtime API path also what SageMaker adds for a model's 4xx, so boto3 raises
    ModelError with OriginalStatusCode and OriginalMessage, as it does against SageMaker."""
    if not runtime_api:
        return Response(encode_error(error), status_code=error.status, media_type=JSON_TYPE)
    original = encode_error(error).decode()
    body = {**error.to_json(), "OriginalStatusCode": error.status, "OriginalMessage": original}
    return JSONResponse(body, status_code=error.status, headers={"x-amzn-ErrorType": "ModelError"})


def _json(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


async def _read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_body_size(int(declared), limits)  # refuse before reading a byte
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise PayloadTooLarge(
                        f"request body is over the limit of {limits.max_body_bytes} bytes", "body_too_large"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"request body not received within {limits.body_timeout:g} s ({size} bytes arrived)",
            "request_timeout",
        ) from None
    return b"".join(chunks)


def _score(
    served: ServingBundle, body: bytes, content_type: str | None, limits: Limits, reasons: str = "acted"
) -> tuple[bytes, str]:
    """The response body, and a Server-Timing value: time to parse and score, and to encode (ms)."""
    start = time.perf_counter()
    predictions = score_request(served, body, content_type, limits, reasons=reasons)
    scored = time.perf_counter()
    encoded = encode_predictions(predictions)
    timing = f"score;dur={(scored - start) * 1e3:.2f}, encode;dur={(time.perf_counter() - scored) * 1e3:.2f}"
    return encoded, timing


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_loopback(request: Request) -> bool:
    return request.client is not None and _is_loopback_host(request.client.host)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"


def _admin_refusal(request: Request) -> str | None:
    """Why an admin request is refused, or None: it must come from this machine, name this machine as its
    Host (no DNS rebinding) and carry no Origin of another site (no cross-origin request from a browser)."""
    from urllib.parse import urlsplit

    if not _is_loopback(request):
        return "reload is allowed from this machine (loopback) only"
    named = request.headers.get("host")
    if named is not None:  # browsers always send one; a client without one cannot be a rebound page
        try:
            host = urlsplit(f"//{named}").hostname
        except ValueError:
            host = None
        if not _is_loopback_host(host):
            return f"reload needs a loopback Host header, got {named[:100]!r}"
    origin = request.headers.get("origin")
    if origin is not None:
        try:
            origin_host = urlsplit(origin).hostname
        except ValueError:
            origin_host = None
        if not _is_loopback_host(origin_host):
            return f"reload refuses cross-origin requests (Origin {origin[:100]!r})"
    return None


# ---- the app -----------------------------------------------------------------------------------------------


def create_app(
    holder: BundleHolder, limits: Limits = DEFAULT_LIMITS, *, after_reload: Callable[[], None] | None = None
) -> Starlette:
    """The Starlette app serving `holder`'s bundle. SIGHUP reloads when the app runs in the main thread;
    `after_reload` runs after a successful `POST /admin/reload` (a worker tells its siblings)."""

    # the event loop hands scoring to these threads: a plain executor costs less per request than anyio's
    # thread pool, and the threads are shared by every request of this app
    scoring_pool = ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="scoring")

    async def ping(request: Request) -> Response:
        served = holder.current
        if served is None:
            message = holder.last_error or "no bundle loaded yet"
            return JSONResponse({"status": "unavailable", "message": message}, status_code=503)
        failed = {"last_reload_error": holder.last_error} if holder.last_error else {}
        return JSONResponse({"status": "ok", **served.describe(), **failed})

    async def invocations(request: Request) -> Response:
        runtime_api = "name" in request.path_params
        served = holder.current
        if served is None:
            return _json(503, "not_ready", "no bundle loaded yet; poll GET /ping")
        try:
            check_accept(request.headers.get("accept"))
            reasons = reasons_option(request.headers.get(CUSTOM_ATTRIBUTES_HEADER))
            body = await _read_body(request, limits)
            content_type = request.headers.get("content-type")
            result, timing = await asyncio.get_running_loop().run_in_executor(
                scoring_pool, _score, served, body, content_type, limits, reasons
            )
        except RequestError as error:
            response = _error(error, runtime_api)
            if error.status == 408:  # the rest of the body may still come: this connection is done
                response.headers["connection"] = "close"
            return response
        except ClientDisconnect:
            log.info("client %s disconnected before sending the whole request", _client(request))
            return Response(status_code=499)
        except Exception:
            log.exception("scoring failed")
            return _json(500, "internal_error", "scoring failed inside the server; see the server log")
        return Response(result, media_type=JSON_TYPE, headers={"Server-Timing": timing})

    async def reload(request: Request) -> Response:
        refusal = _admin_refusal(request)
        if refusal is not None:
            return _json(403, "forbidden", refusal)
        try:
            served = await run_in_threadpool(holder.reload)
        except PlayerguardError as error:
            return _json(500, "reload_failed", f"{error}; still serving the previous bundle")
        except Exception:
            log.exception("reload failed")
            return _json(500, "reload_failed", "reload failed (see the server log); still serving the previous bundle")
        if after_reload is not None:
            after_reload()
        return JSONResponse({"status": "reloaded", **served.describe()})

    async def openapi(request: Request) -> Response:
        return FileResponse(OPENAPI_FILE, media_type=JSON_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            import asyncio

            loop = asyncio.get_running_loop()
            loop.add_signal_handler(
                signal.SIGHUP, lambda: threading.Thread(target=holder.reload_logged, daemon=True).start()
            )
        try:
            yield
        finally:
            scoring_pool.shutdown(wait=False)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/admin/reload", reload, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says it is serving; a port in use is a ConfigError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off only on sockets that say they are TCP, and with it on
    # a response under one segment waited ~40 ms for the client's delayed ACK of its headers
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listener.listen(2048)
    return listener


def server_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    header_timeout: float = 10.0,
    keep_alive: float = 5.0,
    max_connections: int = 1000,
) -> Any:
    """The uvicorn configuration that sheds stalled clients (see the module docstring)."""
    import uvicorn

    from playerguard.inference.connections import guarded_protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
        http=guarded_protocol(header_timeout),
        timeout_keep_alive=keep_alive,
        limit_concurrency=max_connections,
    )


def worker_count(workers: int) -> int:
    """`workers`, with 0 meaning one per core (CPUs this process may run on)."""
    if workers < 0:
        raise ConfigError(f"workers must be 0 (one per core) or more, got {workers}")
    if workers == 0:
        import os

        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return workers


def serve(
    source: BundleSource,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: Limits = DEFAULT_LIMITS,
    log_level: str = "info",
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
) -> None:
    """Load the bundle (errors raise before the port opens), then serve until interrupted, in this process
    or (`workers` > 1; 0: one per core) in that many worker processes sharing the listening socket."""
    import uvicorn

    count = worker_count(workers)
    holder = BundleHolder(source.load)
    served = holder.reload()
    listener = bind_listener(host, port)
    if on_ready is not None:
        on_ready({"url": f"http://{host}:{port}", "workers": count, **served.describe()})
    if count > 1:
        from playerguard.inference.workers import run_workers

        del holder, served  # each worker loads its own copy
        run_workers(count, _serve_worker, (source, host, port, limits, log_level), listener)
        return
    config = server_config(create_app(holder, limits), host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run(sockets=[listener])


def _serve_worker(
    source: BundleSource, host: str, port: int, limits: Limits, log_level: str, listener: socket.socket
) -> None:
    """One worker process: load the bundle, then serve the shared socket; a reload tells the parent."""
    import os

    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s [worker %(process)d] %(name)s: %(message)s")
    holder = BundleHolder(source.load)
    holder.reload()
    parent = os.getppid()
    app = create_app(holder, limits, after_reload=lambda: os.kill(parent, signal.SIGHUP))
    uvicorn.Server(server_config(app, host=host, port=port, log_level=log_level)).run(sockets=[listener])
