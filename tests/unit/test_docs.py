"""The docs are checked against the code, so they cannot drift apart silently."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import yaml

import settings
from backends import open_backend
from handlers import AppConfig, routes
from rooms import Hub, errors

ROOT = Path(__file__).resolve().parents[2]


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_readme_options_table_is_the_one_generated_from_settings():
    """Row for row: run ``python settings.py`` and paste its output over README's table."""
    readme = _read("README.md").splitlines()
    start = readme.index("| option | default | meaning |")
    end = next((i for i in range(start, len(readme)) if not readme[i].startswith("|")), len(readme))
    assert "\n".join(readme[start:end]) + "\n" == settings.readme_table(), (
        "README's options table differs from settings.py: paste the output of `python settings.py`")


def test_every_option_has_a_readme_row_help_and_an_environment_variable():
    flags = [option.flag for option in settings.OPTIONS]
    table = [line for line in _read("README.md").splitlines() if line.startswith("| `--")]
    assert re.findall(r"^\| `(--[a-z0-9-]+)` \|", "\n".join(table), re.M) == flags
    help_text = settings.help_text()
    for option in settings.OPTIONS:
        assert f"  {option.flag}" in help_text and option.env in help_text


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
