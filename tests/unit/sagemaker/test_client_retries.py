"""Which failures the HTTP transport retries: only those where nothing reached the server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.support.servers import QuietHandler
from tritonship.sagemaker.client import HttpTransport, InvocationError
from tritonship.sagemaker.wire import encode_request


class Script(QuietHandler):
    """Answers POSTs from a script of actions; counts what it received."""

    actions: list[str] = []
    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        type(self).received += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        action = self.actions.pop(0) if self.actions else "ok"
        if action == "drop":  # the request arrived, then the server died
            self.connection.close()
            return
        status = {"ok": 200, "busy": 503, "throttled": 429, "bad": 400}[action]
        body = b'{"outputs": []}' if status == 200 else b'{"error": "' + action.encode() + b'"}'
        self.reply(status, body)


@pytest.fixture()
def server() -> Iterator[tuple[str, type[Script]]]:
    handler = type("Handler", (Script,), {"actions": [], "received": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


REQUEST = encode_request([b"\xff\xd8\xff"], binary=False)


def test_busy_and_throttled_answers_are_retried(server):
    url, handler = server
    handler.actions = ["busy", "throttled"]
    answer = HttpTransport(url, retries=3).send(REQUEST)
    assert answer.body == b'{"outputs": []}'
    assert handler.received == 3


def test_a_request_lost_mid_flight_is_not_retried(server):
    url, handler = server
    handler.actions = ["drop"]
    with pytest.raises(InvocationError, match="lost during the request") as info:
        HttpTransport(url, retries=3).send(REQUEST)
    assert handler.received == 1
    assert "not retried" in str(info.value)


def test_a_client_error_is_not_retried_and_says_why(server):
    url, handler = server
    handler.actions = ["bad"]
    with pytest.raises(InvocationError, match="answered 400: bad") as info:
        HttpTransport(url, retries=3).send(REQUEST)
    assert info.value.status == 400 and handler.received == 1


def test_nothing_listening_is_a_clear_error():
    with pytest.raises(InvocationError, match="cannot reach") as info:
        HttpTransport("http://127.0.0.1:9", retries=1).send(REQUEST)
    assert "tritonship serve" in str(info.value)
