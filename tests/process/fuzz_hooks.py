"""Schemathesis hooks for tests/process/test_api_fuzz.py (loaded through ``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

from typing import Any

import schemathesis

# A long-poll with nothing new holds the request up to ``wait`` seconds (60 at most): the fuzzer
# would spend its whole run waiting.  A larger (or no) wait is sent as this one, just as valid.
WAIT_CAP_S = 0.05


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if (case.method.upper(), case.operation.path) != ("GET", "/rooms/{room}/messages"):
        return
    if case.query is None:
        case.query = {}
    query = case.query
    if not isinstance(query, dict):
        return
    if "wait" not in query:
        query["wait"] = str(WAIT_CAP_S)  # absent means 25 s
        return
    try:
        too_long = float(query["wait"]) > WAIT_CAP_S
    except (TypeError, ValueError):
        return  # not a number: the server must refuse it, as sent
    if too_long:
        query["wait"] = str(WAIT_CAP_S)
