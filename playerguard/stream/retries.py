"""Bounded retries for the stream: what counts as transient, and the backoff that retries it within the
time a Lambda invocation has left."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class TransientError(Exception):
    """A failure worth retrying: throttling, a 5xx, a refused or dropped connection. `status` is the HTTP
    status the endpoint answered, when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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
