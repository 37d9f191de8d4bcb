"""Worker processes of the scoring server: N processes serving one listening socket, one per core.

The main process starts the workers (spawned, not forked: XGBoost's OpenMP runtime is not safe to fork),
forwards SIGHUP to each (each reloads its bundle), restarts a worker that dies, and on SIGTERM or SIGINT
stops them all and returns.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_workers(
    count: int, target: Callable[..., None], args: tuple[Any, ...], listener: socket.socket, *, poll: float = 0.5
) -> None:
    """Run `target(*args, listener)` in `count` spawned processes until SIGTERM or SIGINT."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> Any:
        process = context.Process(target=target, args=(*args, listener), daemon=False)
        process.start()
        return process

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    def forward(signum: int, frame: Any) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                _signal(process.pid, signal.SIGHUP)

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    previous_hup = signal.signal(signal.SIGHUP, forward) if hasattr(signal, "SIGHUP") else None
    processes = [start() for _ in range(count)]
    try:
        while not stopping:
            time.sleep(poll)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.error("worker %s exited with %s; starting another", process.pid, process.exitcode)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                _signal(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=35)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous_hup is not None:
            signal.signal(signal.SIGHUP, previous_hup)
        listener.close()


def _signal(pid: int, signum: int) -> None:
    import os

    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
