"""A real Prometheus (Debian's package) with the shipped deploy/prometheus.yml, pointed at a real
Obrolan on free ports: the target is up and the chat's counters move as Prometheus sees them; and
promtool accepts the shipped config and alert rules."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.chatclient import Api, held_poll_by_newcomer, is_event
from tests.servers import ROOT, ChatProcess, free_port, stop_process, wait_until

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
SCRAPE_INTERVAL = "1s"  # the shipped 15 s, shortened so that the test sees a scrape soon
SEEN_TIMEOUT_S = 30.0  # Prometheus starting, scraping, and answering on a busy 2-core machine

needs_prometheus = pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                                      reason="prometheus not installed (scripts/install-system-packages.sh)")


@needs_prometheus
def test_promtool_accepts_the_shipped_config_and_rules():
    for args in (["check", "config", "deploy/prometheus.yml"], ["check", "rules", "deploy/alerts.yml"]):
        done = subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def shipped_config_for(target: str, workdir: Path) -> Path:
    """deploy/prometheus.yml with its target and interval changed (the rest as shipped), beside alerts.yml."""
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    assert '"127.0.0.1:9100"' in text and "scrape_interval: 15s" in text
    text = text.replace('"127.0.0.1:9100"', f'"{target}"').replace("scrape_interval: 15s",
                                                                   f"scrape_interval: {SCRAPE_INTERVAL}")
    shutil.copy(ROOT / "deploy" / "alerts.yml", workdir / "alerts.yml")
    path = workdir / "prometheus.yml"
    path.write_text(text)
    return path


class Prometheus:
    def __init__(self, config: Path, workdir: Path) -> None:
        self.port = free_port()
        self.log = open(workdir / "prometheus.log", "ab")
        assert PROMETHEUS is not None
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self.ready, "prometheus", self.proc, SEEN_TIMEOUT_S)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1.0) as resp:
                return resp.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> float | None:
        """The instant value of ``expr`` (the first series), or None when it has none."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5.0) as resp:
            result = json.load(resp)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@needs_prometheus
@pytest.mark.gen_test(timeout=120)
async def test_prometheus_scrapes_a_chat_with_the_shipped_config(tmp_path):
    metrics_port = free_port()
    server = ChatProcess(tmp_path / "data", f"--metrics-port={metrics_port}", "--rate-limit=0",
                         log_path=tmp_path / "server.log")
    api = Api(server.url)
    prometheus: Prometheus | None = None
    try:
        await server.started()
        config = shipped_config_for(f"127.0.0.1:{metrics_port}", tmp_path)
        prometheus = await asyncio.to_thread(Prometheus, config, tmp_path)
        prom = prometheus

        def seen(expr: str, at_least: float) -> None:
            def holds() -> bool:
                found = prom.query(expr)
                return found is not None and found >= at_least
            wait_until(holds, f"{expr} >= {at_least}", prom.proc, SEEN_TIMEOUT_S)

        await asyncio.to_thread(seen, 'up{job="obrolan"}', 1)
        ani = await api.join("Ani", "prom")
        budi = await api.join("Budi", "prom")
        a = await ani.ws()
        hello, _, _ = await a.handshake()
        # Budi's first connection is a long-poll that has to wait: it makes him present.
        poll, _ = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)
        await asyncio.to_thread(seen, 'obrolan_connections{transport="websocket"}', 1)
        await a.send({"type": "message", "text": "dilihat prometheus"})
        await a.recv_until(is_event("message", "Ani"))
        assert (await asyncio.wait_for(poll, SEEN_TIMEOUT_S)).json["events"]
        await asyncio.to_thread(seen, 'obrolan_events_total{type="message"}', 1)
        await asyncio.to_thread(seen, 'obrolan_deliveries_total{transport="websocket"}', 1)
        await asyncio.to_thread(seen, 'obrolan_deliveries_total{transport="longpoll"}', 1)
        a.close()
    finally:
        api.close()
        if prometheus is not None:
            prometheus.stop()
        server.kill()
