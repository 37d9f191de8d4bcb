"""The scoring endpoint as the stream sees it: one JSON call per batch, failures sorted into kinds, and the
bounded backoff that retries the transient ones.

`HttpEndpoint` talks to the local server (`POST <url>/invocations`); `SageMakerEndpoint` to a SageMaker
real-time endpoint, or to the local server, through boto3's `sagemaker-runtime` client (`runtime_client`:
unsigned on loopback, so the local server needs no credentials). Both raise `TransientError` for
what a retry may fix (throttling, 5xx, connection refused or dropped) and `EndpointRejected` for a 4xx,
carrying the server's error code (payloads.RequestError) so the stream can tell a bad record from a bad
request. Light imports only: the Lambda loads this module.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from playerguard.errors import PlayerguardError
from playerguard.stream.notifiers.base import is_transient_aws_error
from playerguard.stream.retries import TransientError

RECORD_ERROR_CODES = frozenset(
    {
        "invalid_events",
        "invalid_record",
        "invalid_player_id",
        "no_events_before_cutoff",
        "no_features",
        "missing_feature",
        "non_numeric_feature",
        "value_out_of_range",
        "too_many_attributes",
    }
)
"""Codes the endpoint answers when the data of a record is at fault, not the request or the endpoint."""


class EndpointRejected(Exception):
    """The endpoint refused the request (4xx): retrying the same request cannot succeed."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code

    @property
    def blames_a_record(self) -> bool:
        return self.code in RECORD_ERROR_CODES


class Endpoint(Protocol):
    """The scoring endpoint: JSON request in, JSON response out."""

    def invoke(self, payload: Mapping[str, Any]) -> Any: ...


def read_answer(status: int, body: bytes, where: str) -> Any:
    """The decoded JSON answer, or the error its status means."""
    if status == 429 or status >= 500:
        raise TransientError(f"{where} answered {status}: {body[:200].decode('utf-8', 'replace')}", status)
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


class _Connection(http.client.HTTPConnection):
    """An HTTP connection with Nagle's algorithm off, as boto3's (urllib3's) connections have it: http.client
    sends a body over 2,920 bytes apart from its headers, and the server's delayed ACK of the headers then held
    the body back ~40 ms."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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
            kind = _TlsConnection if self._parts.scheme == "https" else _Connection
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

    @classmethod
    def from_settings(cls, settings: Any, client: Any = None) -> SageMakerEndpoint:
        """The endpoint `settings.endpoint_name`, through a client that leaves retries to the stream."""
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "sagemaker-runtime",
                region_name=settings.region,
                config=Config(retries={"mode": "standard", "max_attempts": 1}),
            )
        return cls(settings.endpoint_name, client)

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


class EndpointError(PlayerguardError):
    """The endpoint refused a request: `status` is the model server's HTTP status, `code` its error code."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def runtime_client(
    endpoint_url: str | None = None, *, region: str | None = None, session: Any = None, timeout: float = 60.0
) -> Any:
    """A `sagemaker-runtime` client. With `endpoint_url` on loopback (the local server) requests are not
    signed, so no AWS credentials are needed; otherwise the usual credential chain applies."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    options: dict[str, Any] = {"read_timeout": timeout, "retries": {"mode": "standard", "max_attempts": 3}}
    local = endpoint_url is not None and urlsplit(endpoint_url).hostname in ("127.0.0.1", "localhost", "::1")
    if local:
        options["signature_version"] = UNSIGNED
        region = region or "us-east-1"  # botocore needs one; the local server ignores it
    session = session or boto3.Session()
    return session.client(
        "sagemaker-runtime", region_name=region, endpoint_url=endpoint_url, config=Config(**options)
    )


def _encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def invoke(
    client: Any, endpoint_name: str, payload: Any, *, content_type: str = "application/json"
) -> list[dict[str, Any]]:
    """Score `payload` (records, `{"instances": ...}`, `{"events": ...}`, or an encoded body such as CSV)
    and return the predictions; EndpointError naming the problem when the endpoint refuses it."""
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType=content_type, Accept="application/json", Body=_encode(payload)
        )
    except client.exceptions.ModelError as error:
        status = error.response.get("OriginalStatusCode")
        original = error.response.get("OriginalMessage") or ""
        try:
            details = json.loads(original)
        except ValueError:
            details = {"message": original or str(error)}
        details = details if isinstance(details, dict) else {"message": original}
        message = str(details.get("message") or error)
        raise EndpointError(f"endpoint {endpoint_name} refused the request ({status}): {message}", status,
                            str(details.get("error") or "")) from None
    return json.loads(response["Body"].read())["predictions"]
