"""handlers.base.declared_body_length: the body length Content-Length announces, read on every
request (from HTTPHeaders.get_list: a missing header costs no KeyError)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from handlers.base import declared_body_length
from rooms import errors


def headers(*lines: str) -> HTTPHeaders:
    return HTTPHeaders.parse("".join(f"{line}\r\n" for line in lines))


@pytest.mark.parametrize("lines,length", [
    ((), None),
    (("Host: chat",), None),
    (("Content-Length: 12",), 12),
    (("Content-Length: 5, 5",), 5),  # equal duplicates, as some proxies send, count once
    (("Content-Length: 5", "Content-Length: 5"), 5),
])
def test_the_length_announced(lines: tuple[str, ...], length: int | None) -> None:
    assert declared_body_length(headers(*lines)) == length


@pytest.mark.parametrize("lines", [
    ("Content-Length: 5, 6",), ("Content-Length: 5", "Content-Length: 6"), ("Content-Length: -1",),
    ("Content-Length: ",), ("Content-Length: 1e3",), ("Content-Length: ²",),
])
def test_anything_else_is_a_bad_request(lines: tuple[str, ...]) -> None:
    with pytest.raises(errors.BadRequest):
        declared_body_length(headers(*lines))
