"""The scoring endpoint as the stream sees it: one JSON call per batch, failures sorted into kinds, and the
bounded backoff that retries the transient ones.

`HttpEndpoint` talks to the local server (`POST <url>/invocations`); `SageMakerEndpoint` to a SageMaker
real-time endpoint through a `sagemaker-runtime` client the caller builds. Both raise `TransientError` for
what a retry may fix (throttling, 5xx, connection refused or dropped) and `EndpointRejected` for a 4xx,
carrying the server's error code (payloads.RequestError) so the stream can tell a bad record from a bad
request. Light imports only: the Lambda loads this module.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from playerguard.stream.notifiers.local import is_transient_aws_error

RECORD_ERROR_CODES = frozenset(
    {
        "invalid_events",
        "invalid_record",
        "invalid_player_id",
        "no_events_before_cutoff",
        "no_features",
        "missing_feature",
        "non_numeric_feature",
    }
)
"""Codes the endpoint answers when the data of a record is at fault, not the request or the endpoint."""


class TransientError(Exception):
    """A failure worth retrying: throttling, a 5xx, a refused or dropped connection."""


class EndpointRejected(Exception):
    """The endpoint refused the request (4xx): retrying the same request cannot succeed."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code

    @property
    def blames_a_record(self) -> bool:
        return self.code in RECORD_ERROR_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: attempt n waits min(base * 2**(n-1), cap) seconds before the next."""

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)


@dataclass
class Attempts:
    """Retries within one batch: bounded backoff, stopping while the Lambda still has time to answer."""

    policy: RetryPolicy
    logger: Any
    remaining_ms: Callable[[], int] | None = None
    retried: int = 0

    def _delay(self, attempt: int) -> float | None:
        """The wait before another attempt, or None when there is none: out of attempts, or waiting would
        leave the Lambda under a second to report what failed."""
        delay = self.policy.delay(attempt)
        if attempt >= self.policy.max_attempts:
            return None
        if self.remaining_ms is not None and self.remaining_ms() < delay * 1000 + 1000:
            return None
        return delay

    def _wait(self, delay: float, what: str) -> None:
        self.logger.warning(f"{what}; retrying in {delay:.2f}s")
        self.retried += 1
        self.policy.sleep(delay)

    def call(self, what: str, function: Callable[[], Any]) -> Any:
        """`function()`, retried on TransientError; the last TransientError is raised when attempts run out."""
        attempt = 1
        while True:
            try:
                return function()
            except TransientError as error:
                delay = self._delay(attempt)
                if delay is None:
                    raise
                self._wait(delay, f"{what} failed (attempt {attempt}): {error}")
            attempt += 1

    def resend(
        self,
        what: str,
        items: Sequence[Any],
        send: Callable[[list[Any]], Mapping[str, str]],
        key: Callable[[Any], str],
    ) -> dict[str, str]:
        """`send(items)` returns {key: reason} for the items it could not deliver; only those go again.
        Returns what still fails after the last attempt, as {key: reason}."""
        pending = list(items)
        attempt = 1
        while True:
            failed = send(pending) if pending else {}
            pending = [item for item in pending if key(item) in failed]
            delay = self._delay(attempt) if pending else None
            if delay is None:
                return {key(item): failed[key(item)] for item in pending}
            self._wait(delay, f"{len(pending)} {what} failed (attempt {attempt})")
            attempt += 1


class Endpoint(Protocol):
    """The scoring endpoint: JSON request in, JSON response out."""

    def invoke(self, payload: Mapping[str, Any]) -> Any: ...


def read_answer(status: int, body: bytes, where: str) -> Any:
    """The decoded JSON answer, or the error its status means."""
    if status == 429 or status >= 500:
        raise TransientError(f"{where} answered {status}: {body[:200].decode('utf-8', 'replace')}")
    if status >= 400:
        try:
            error = orjson.loads(body)
        except orjson.JSONDecodeError:
            error = {}
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or body[:500].decode("utf-8", "replace"))
        raise EndpointRejected(f"{where} answered {status}: {message}", str(error.get("error") or ""))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TransientError(f"{where} answered {status} with a body that is not JSON") from None


class HttpEndpoint:
    """The local scoring server over HTTP: POST <url>/invocations on one kept-alive connection."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint URL must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self._parts = parts
        self._path = parts.path.rstrip("/") + "/invocations"
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = (
                http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            )
            self._connection = kind(self._parts.hostname, self._parts.port, timeout=self.timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, body: bytes) -> tuple[int, bytes]:
        connection = self._connect()
        connection.request(
            "POST", self._path, body, {"Content-Type": "application/json", "Accept": "application/json"}
        )
        response = connection.getresponse()
        return response.status, response.read()

    def invoke(self, payload: Mapping[str, Any]) -> Any:
        body = orjson.dumps(payload)
        reused = self._connection is not None
        try:
            try:
                status, data = self._post(body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                self.close()  # the server dropped an idle kept-alive connection: a fresh one is not a retry
                status, data = self._post(body)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise TransientError(f"endpoint {self.url} unreachable: {error}") from None
        return read_answer(status, data, f"endpoint {self.url}")


class SageMakerEndpoint:
    """A SageMaker real-time endpoint through a `sagemaker-runtime` client built by the caller."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client

    def invoke(self, payload: Mapping[str, Any]) -> Any:
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.name,
                ContentType="application/json",
                Accept="application/json",
                Body=orjson.dumps(payload),
            )
        except Exception as error:
            if is_transient_aws_error(error):
                raise TransientError(f"endpoint {self.name}: {error}") from None
            details = getattr(error, "response", None)
            if not isinstance(details, dict):
                raise
            # ModelError carries the container's own status and body
            status = int(details.get("OriginalStatusCode") or 400)
            body = str(details.get("OriginalMessage") or details.get("Error", {}).get("Message") or error)
            return read_answer(status, body.encode("utf-8"), f"endpoint {self.name}")
        return read_answer(200, response["Body"].read(), f"endpoint {self.name}")
