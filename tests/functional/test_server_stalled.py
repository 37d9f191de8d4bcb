"""Stalled clients are shed: real sockets on 127.0.0.1 against the server with short timeouts.

Every socket has its own timeout, so a server that never sheds a client fails the test instead of hanging it.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from endpoint_fixtures import send, shared_test_bundle

from playerguard.inference.payloads import Limits
from playerguard.inference.sagemaker_inference import load_serving_bundle
from playerguard.inference.server import BundleHolder, create_app, server_config

SOCKET_TIMEOUT = 20.0  # far above the server's timeouts below: only a server that never sheds reaches it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    import uvicorn

    path: Path = shared_test_bundle(tmp_path_factory)
    holder = BundleHolder(lambda: load_serving_bundle(path))
    holder.reload()
    app = create_app(holder, Limits(body_timeout=0.5))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    config = server_config(app, log_level="warning", header_timeout=0.5, keep_alive=0.5, max_connections=100)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not runner.started:
        assert thread.is_alive(), "the test server did not start"
        time.sleep(0.01)
    yield listener.getsockname()
    runner.should_exit = True
    thread.join(timeout=30)
    listener.close()


def connect(address: tuple[str, int]) -> socket.socket:
    client = socket.create_connection(address, timeout=SOCKET_TIMEOUT)
    client.settimeout(SOCKET_TIMEOUT)
    return client


def read_until_closed(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


def post_head(length: int) -> bytes:
    return (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_shorter_than_its_content_length_gets_408_and_a_close(server: tuple[str, int]) -> None:
    with connect(server) as client:
        client.sendall(post_head(1000) + b'[{"player_id": "p1"')
        answer = read_until_closed(client)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"request_timeout"' in answer and b"connection: close" in answer.lower()
    assert send(url(server), "GET", "/ping")[0] == 200


def test_a_body_sent_a_byte_at_a_time_is_cut_off(server: tuple[str, int]) -> None:
    body = b'[{"player_id": "p1", "sessions_7d": 1}]' * 10
    with connect(server) as client:
        client.sendall(post_head(len(body)))
        for byte in body:
            if select.select([client], [], [], 0.05)[0]:  # the server answered: stop sending
                break
            client.sendall(bytes([byte]))
        else:
            pytest.fail("the server read the whole slow body")
        answer = read_until_closed(client)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_half_sent_request_headers_are_shed(server: tuple[str, int]) -> None:
    clients = [connect(server) for _ in range(50)]
    try:
        for client in clients:
            client.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        answers = [read_until_closed(client) for client in clients]
    finally:
        for client in clients:
            client.close()
    shed = sum(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert shed == 50
    assert send(url(server), "GET", "/ping")[0] == 200


def test_an_idle_kept_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as client:
        client.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = read_until_closed(client)  # the answer, then the close once idle
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_client_that_disconnects_mid_body_is_one_info_line(
    server: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="playerguard"):
        with connect(server) as client:
            client.sendall(post_head(1000) + b'[{"player_id"')
            time.sleep(0.1)  # let the server start reading the body
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while "disconnected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    lines = [r for r in caplog.records if r.name.startswith("playerguard")]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert "disconnected before sending the whole request" in lines[0].getMessage()
    assert "scoring failed" not in caplog.text and "Traceback" not in caplog.text


def test_the_server_configuration_caps_connections_and_keep_alive() -> None:
    config = server_config(object(), max_connections=64, keep_alive=3.0)
    assert (config.limit_concurrency, config.timeout_keep_alive) == (64, 3.0)
