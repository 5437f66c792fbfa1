"""Log formats: the text line carries the request id (``-`` outside a request); a JSON line is one object with
the extra fields and the traceback; configuring twice leaves one handler."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest

from outrider.observability.logs import configure_logging
from outrider.observability.request_ids import current_request_id


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def in_request(request_id: str, fn) -> None:
    def run() -> None:
        current_request_id.set(request_id)
        fn()

    contextvars.copy_context().run(run)


def test_text_lines_name_the_request(restore_root):
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    log = logging.getLogger("outrider.test")
    log.info("outside")
    in_request("req-7", lambda: log.warning("inside %d", 7))
    log.debug("below the level")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" INFO outrider.test [-]: outside")
    assert second.endswith(" WARNING outrider.test [req-7]: inside 7")


def test_json_lines_are_objects_with_extras_and_tracebacks(restore_root):
    stream = io.StringIO()
    configure_logging("debug", "text", stream)
    configure_logging("debug", "json", stream)  # replaces the first handler: one line per record
    log = logging.getLogger("outrider.test")

    def fail() -> None:
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("it failed", extra={"route": "/x", "status": 500})

    in_request("req-8", fail)
    log.info("plain")
    failed, plain = (json.loads(line) for line in stream.getvalue().splitlines())
    assert failed["level"] == "ERROR" and failed["logger"] == "outrider.test" and failed["message"] == "it failed"
    assert failed["request_id"] == "req-8" and failed["route"] == "/x" and failed["status"] == 500
    assert "ValueError: bad value" in failed["exception"]
    assert plain["request_id"] is None and "exception" not in plain and plain["time"].endswith("+00:00")


def test_the_default_handler_follows_a_replaced_stderr(restore_root, monkeypatch):
    # A command run under a captured stderr (a test runner's, then closed) must not leave later records
    # failing on the closed stream: each record goes to the stderr of the moment.
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging("info", "text")
    log = logging.getLogger("outrider.test")
    log.info("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    log.info("two")
    assert second.getvalue().rstrip().endswith("INFO outrider.test [-]: two")
    assert "Logging error" not in second.getvalue()
