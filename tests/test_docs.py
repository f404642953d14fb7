"""The docs are checked against the code, so they cannot drift apart silently."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import yaml
from tornado.options import OptionParser

import chat
from backends import open_backend
from handlers import AppConfig, routes
from rooms import Hub, errors

ROOT = Path(__file__).resolve().parent.parent


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_every_option_is_in_the_readme_table_and_nothing_else():
    parser = OptionParser()
    chat.define_options(parser)
    defined = {"--" + name.replace("_", "-") for name in parser.as_dict() if name != "help"}
    table = [line for line in _read("README.md").splitlines() if line.startswith("| `--")]
    documented = set(re.findall(r"`(--[a-z0-9-]+)`", "\n".join(table)))
    assert defined - documented == set(), "options missing from README's table"
    assert documented - defined == set(), "README documents options that do not exist"


def test_every_error_code_is_in_the_protocol_doc():
    codes = {cls.code for _, cls in inspect.getmembers(errors, inspect.isclass)
             if issubclass(cls, errors.ChatError)}
    codes |= set(errors.HTTP_STATUS_CODES.values())
    table = {m for m in re.findall(r"^\| `([a-z_]+)` \|", _read("docs/protocol.md"), re.M)}
    assert codes - table == set(), "error codes missing from docs/protocol.md"
    assert table - codes == set(), "docs/protocol.md lists error codes the server never sends"


def _route_template(pattern: str) -> str:
    return pattern.replace("([^/]+)", "{room}")


def test_openapi_paths_match_the_routes():
    spec = yaml.safe_load(_read("docs/openapi.yaml"))
    served = {_route_template(pattern) for pattern, *_ in routes(Hub(open_backend("memory")), AppConfig("x"))}
    html_or_ws = {"/", "/rooms/{room}", "/rooms/{room}/ws"}
    assert set(spec["paths"]) == served - html_or_ws


def test_readme_keeps_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = _read("README.md")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    assert "python chat.py" in commands[0]
    assert commands[1].strip() == "bash scripts/test.sh"
    assert "scripts/test.sh" in _read(".ci/run")
