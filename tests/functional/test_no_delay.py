"""Nagle's algorithm is off on both ends of a scoring call: with it on, a request or an answer under one
TCP segment waited for the other side's delayed ACK (~40 ms a call on loopback)."""

from __future__ import annotations

import socket

import pytest
from endpoint_fixtures import as_records, running_server, shared_test_bundle, synthetic_features

from playerguard.inference.server import BundleHolder, BundleSource, bind_listener, create_app
from playerguard.settings import Settings
from playerguard.stream.endpoint import HttpEndpoint


def test_the_listener_says_it_is_tcp_so_asyncio_turns_nagle_off() -> None:
    listener = bind_listener("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()


def test_the_stream_client_turns_nagle_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    source = BundleSource(Settings(), shared_test_bundle(tmp_path_factory))
    holder = BundleHolder(source.load)
    holder.reload()
    with running_server(create_app(holder)) as url:
        endpoint = HttpEndpoint(url)
        answer = endpoint.invoke({"instances": as_records(synthetic_features(2, seed=3))})
        assert len(answer["predictions"]) == 2
        assert endpoint._connection is not None and endpoint._connection.sock is not None
        assert endpoint._connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        endpoint.close()
