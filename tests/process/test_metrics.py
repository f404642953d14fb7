"""``--metrics-port``: a real server's ``/metrics`` (its own listener) before and after a short chat
over WebSocket and long-poll; the counters and gauges moved as the chat did."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.chatclient import Api, held_poll_by_newcomer, is_event, room_url
from tests.servers import ChatProcess, free_port

POLL_TIMEOUT_S = 15.0  # bounds a hang


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await api.request("GET", "/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain"), resp.body
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(resp.body.decode()) for sample in family.samples}


def value(figures, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.gen_test(timeout=60)
async def test_metrics_move_as_a_chat_goes(tmp_path):
    metrics_port = free_port()
    server = ChatProcess(tmp_path / "data", f"--metrics-port={metrics_port}", "--rate-limit=0",
                         log_path=tmp_path / "server.log")
    api = Api(server.url)
    metrics = Api(f"http://127.0.0.1:{metrics_port}")
    try:
        await server.started()
        assert (await api.request("GET", "/metrics")).status == 404  # the chat port never serves them
        before = await scrape(metrics)
        assert value(before, "obrolan_store_up") == 1
        assert value(before, "obrolan_build_info", version="0.1.0", store="sqlite") == 1

        ani = await api.join("Ani", "metrik")
        budi = await api.join("Budi", "metrik")
        a = await ani.ws()
        hello, _, _ = await a.handshake()
        # Budi's first connection is a long-poll that has to wait: it makes him present.
        poll, _ = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)
        # Budi's poll is waiting once the census says so (polled with a deadline, like a process start).
        deadline = asyncio.get_running_loop().time() + POLL_TIMEOUT_S
        while True:
            during = await scrape(metrics)
            if value(during, "obrolan_longpoll_waiting") == 1 or asyncio.get_running_loop().time() > deadline:
                break
        assert value(during, "obrolan_connections", transport="websocket") == 1
        assert value(during, "obrolan_connections", transport="longpoll") == 1
        assert value(during, "obrolan_rooms_loaded") == 1
        assert value(during, "obrolan_room_members_count") == 1  # one room ...
        assert value(during, "obrolan_room_members_sum") == 2  # ... with Ani and Budi
        assert value(during, "obrolan_room_members_bucket", le="1.0") == 0
        assert value(during, "obrolan_room_members_bucket", le="2.0") == 1

        await a.send({"type": "message", "text": "satu"})
        await a.recv_until(is_event("message", "Ani"))
        assert (await asyncio.wait_for(poll, POLL_TIMEOUT_S)).json["events"]
        refused = await api.request("POST", room_url("metrik", "/messages"), token=ani.token, json_body={"text": ""})
        assert refused.status == 400
        a.close()

        after = await scrape(metrics)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)
        assert moved("obrolan_events_total", type="message") == 1
        assert moved("obrolan_events_total", type="join") == 2
        assert moved("obrolan_deliveries_total", transport="websocket") >= 1  # the message to Ani's socket
        assert moved("obrolan_deliveries_total", transport="longpoll") >= 1  # and in Budi's answer
        assert moved("obrolan_errors_total", code=refused.json["error"]) == 1
        assert moved("obrolan_store_append_seconds_count") == 3  # the two joins and the message
        assert moved("obrolan_publish_to_send_seconds_count") >= 1  # a batch reached Ani's socket
    finally:
        api.close()
        metrics.close()
        server.kill()
