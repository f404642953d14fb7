"""deploy/obrolan.service says what the server does: every OBROLAN_* variable it sets is an option
of settings.py and its value is accepted, it waits on /readyz, and it does not restart a process
that refused its options (the exit status chat.py uses for them)."""

from __future__ import annotations

import configparser
import re

import settings
from tests.servers import ROOT

UNIT = ROOT / "deploy" / "obrolan.service"


def unit_lines(key: str) -> list[str]:
    """Every ``key=value`` of the unit (systemd allows a key more than once, configparser does not)."""
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(key + "=")]


def test_every_variable_is_an_option_and_its_value_is_accepted():
    environ = dict(value.split("=", 1) for value in unit_lines("Environment"))
    known = {option.env for option in settings.OPTIONS}
    assert environ and set(environ) <= known, set(environ) - known
    parsed, address, port = settings.parse_settings(["obrolan"], environ)
    assert (address, port) == (environ["OBROLAN_ADDRESS"], int(environ["OBROLAN_PORT"]))
    assert parsed.log_format == environ["OBROLAN_LOG_FORMAT"]
    assert parsed.metrics_port == int(environ["OBROLAN_METRICS_PORT"])


def test_started_means_ready_and_refused_options_are_not_restarted():
    (post,) = unit_lines("ExecStartPost")
    port = dict(v.split("=", 1) for v in unit_lines("Environment"))["OBROLAN_PORT"]
    assert re.search(rf"curl -f\S* .*http://127\.0\.0\.1:{port}/readyz", post), post
    chat = (ROOT / "chat.py").read_text()
    refused = re.search(r"except SettingError as exc:\n\s+print\(exc\.line, file=sys\.stderr\)\n\s+sys\.exit\((\d+)\)",
                        chat)
    assert refused is not None
    assert unit_lines("RestartPreventExitStatus") == [refused.group(1)]


def test_the_unit_parses_as_ini_with_its_three_sections():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]
    assert parser["Service"]["KillSignal"] == "SIGTERM"
