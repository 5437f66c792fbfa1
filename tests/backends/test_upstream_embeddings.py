"""What an upstream's /embeddings answer may contain, and what is refused as a broken answer (502) rather than
passed on: vectors back in input order, floats or base64 float32, usage or an estimate; never a short, repeated,
ragged or non-finite list."""

import base64
import struct

import pytest

from outrider.backends.upstream_embeddings import parse_embeddings
from outrider.backends.upstream_stream import UpstreamCall
from outrider.core.errors import UpstreamError

URL = "http://up/v1/embeddings"
CALL = UpstreamCall(client=None, url=URL, body={}, model_id="up-embed", provider="up", monitor=None, prompt_chars=9)


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_vectors_come_back_in_input_order_from_floats_or_base64():
    payload = {
        "data": [{"index": 1, "embedding": b64([0.5, -2.0])}, {"index": 0, "embedding": [1, 2.5]}],
        "usage": {"prompt_tokens": 7},
    }
    result = parse_embeddings(CALL, payload, 2)
    assert result.vectors == [[1.0, 2.5], [0.5, -2.0]] and result.prompt_tokens == 7


def test_missing_usage_is_estimated_from_the_characters_sent():
    result = parse_embeddings(CALL, {"data": [{"embedding": [0.0]}]}, 1)
    assert result.prompt_tokens == 3  # 9 characters at about four a token


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"data": [{"embedding": [1.0]}]}, "1 embeddings for 2 inputs"),
        ({"data": "nope"}, "no embeddings"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}, "repeated"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [2.0]}]}, "missing"),
        ({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]}, "sizes"),
        ({"data": [{"embedding": [1.0]}, {"embedding": [float("nan")]}]}, "non-finite"),
        ({"data": [{"embedding": [1.0]}, {"embedding": ["1"]}]}, "not a list of numbers"),
        ({"data": [{"embedding": [1.0]}, {"embedding": [True]}]}, "not a list of numbers"),
        ({"data": [{"embedding": [1.0]}, {"embedding": "%%%"}]}, "not base64"),
        ({"data": [{"embedding": []}, {"embedding": []}]}, "sizes"),
        ({"error": {"message": "overloaded"}}, "overloaded"),
    ],
)
def test_broken_answers_are_upstream_errors(payload, words):
    with pytest.raises(UpstreamError, match=words):
        parse_embeddings(CALL, payload, 2)
