"""Connection guards for the local server: uvicorn's HTTP/1.1 protocol with a deadline for request headers.

Uvicorn closes idle kept-alive connections (`timeout_keep_alive`) and caps concurrency (`limit_concurrency`),
but a client that opens a connection and sends its headers a byte at a time is never timed out: every byte
re-arms nothing and the connection (and its file descriptor) is held for good. `guarded_protocol` closes a
connection whose request headers are not complete `header_timeout` seconds after it opened, or after the
previous response on it, answering 408.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_TIMEOUT_BODY = b'{"error": "request_timeout", "message": "request headers not received in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol that sheds a connection whose request headers do not arrive within `header_timeout`."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info(
            "closing a connection from %s: request headers not received in %gs",
            self.client,
            self.header_timeout,
        )
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # the next request on this connection gets its own deadline
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float) -> type[Any]:
    """The protocol class to pass as uvicorn's `http`, with this header deadline."""
    return type("GuardedH11Protocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})
