"""The test tiers, and the fixtures of the in-process server (shared by the http and contract tiers).

Every test lives in one tier folder and gets that tier's marker, so ``-m`` picks tiers:

============  ===============================================================================
``unit``      tests/unit/: the core and the helpers alone; no server, no subprocess
``contract``  tests/contract/: the store and broker contracts, against every implementation
``http``      tests/http/: the app served in-process, real HTTP and WebSocket clients
``process``   tests/process/: real ``python chat.py`` processes, redis-server, nginx
``browser``   tests/browser/: a real headless Chromium (run in their own pytest invocation)
============  ===============================================================================

Override settings of the in-process server for one test with
``@pytest.mark.settings(presence_grace=0.2)``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import pytest

from chat import Settings, make_app
from tests.chatclient import Api

TESTS_DIR = Path(__file__).resolve().parent
TIERS = ("unit", "contract", "http", "process", "browser")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): override chat Settings for one test")


def tier_of(path: Path) -> str | None:
    """The tier folder ``path`` is in (None when it is in none)."""
    try:
        parts = path.resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier; a test file outside the tier folders is a mistake."""
    for item in items:
        tier = tier_of(item.path)
        if tier is None:
            if TESTS_DIR in item.path.resolve().parents:
                folders = ",".join(TIERS)
                raise pytest.UsageError(f"{item.nodeid}: put it in one of the tier folders tests/{{{folders}}}/")
            continue
        item.add_marker(tier)


@functools.lru_cache
def tiers_selected(markexpr: str) -> frozenset[str]:
    """The tiers ``-m markexpr`` can select.  Worked out only for expressions of tier names alone
    (``unit``, ``not browser``, ``http or contract``); any other marker may be on a test of any tier."""
    words = set(re.findall(r"[A-Za-z_]\w*", markexpr))
    if re.sub(r"[A-Za-z_]\w*|[()\s]", "", markexpr) or not words <= {*TIERS, "and", "or", "not"}:
        return frozenset(TIERS)
    selected = set()
    for tier in TIERS:
        try:  # only tier names, and/or/not and parentheses are left: a Python boolean expression
            if eval(markexpr, {"__builtins__": {}}, {t: t == tier for t in TIERS}):
                selected.add(tier)
        except SyntaxError:
            return frozenset(TIERS)  # pytest reports the expression itself
    return frozenset(selected)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Do not even import the tiers ``-m`` leaves out: ``-m unit`` takes a second, not the time it
    takes to import Playwright and every other tier's modules."""
    markexpr = config.option.markexpr
    if markexpr and collection_path.parent == TESTS_DIR and collection_path.name in TIERS \
            and collection_path.name not in tiers_selected(markexpr):
        return True
    return None


# -- the in-process server --------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path, request) -> Settings:
    base = Settings(data_dir=str(tmp_path / "data"), store="memory", cookie_secret="test-secret",
                    presence_grace=0.3)
    marker = request.node.get_closest_marker("settings")
    return dataclasses.replace(base, **marker.kwargs) if marker else base


@pytest.fixture
def app(io_loop, settings):
    application = make_app(settings)
    io_loop.run_sync(application.hub.start)
    yield application
    io_loop.run_sync(application.hub.close)


@pytest.fixture
def chat_url(http_server, http_port) -> str:
    """The running server's base URL (named so it does not clash with base_url fixtures)."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def api(chat_url):
    client = Api(chat_url)
    yield client
    client.close()
