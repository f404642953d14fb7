"""Prometheus metrics: the core's counts (``rooms.ports.Metrics``) and, read when scraped, the hub's
census and the store's health; served on ``--metrics-port``, a listener of its own.

The exposition format is prometheus_client's.  No label carries a room name, a user name or a
message's text: they are unbounded and private.  One registry per process (not the library's global
one), so that tests can run several apps in one process.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Protocol

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from rooms import ChatError, Hub
from rooms.hub import Census
from rooms.ports import Metrics

STORE_PING_TIMEOUT_S = 2.0  # a store that takes longer to answer the scrape's ping counts as down
# Transports always exported (at 0 when unused), so a dashboard's series exist from the start.
TRANSPORTS = ("websocket", "stream", "longpoll")
EVENT_TYPES = ("message", "join", "leave")
# Seconds: a group commit takes about a millisecond, a loop iteration less; a second is already bad.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Members present per loaded room (through this process).
MEMBER_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@functools.cache  # read once: it does not change while the process runs
def version() -> str:
    try:
        return metadata.version("obrolan")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class PrometheusMetrics(Metrics):
    """The counters; :class:`HubCollector` adds the gauges read from the hub when scraped."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        """``registry``: None with several workers (each counts into its files, ``ops.multiproc``)."""
        self.events = Counter("obrolan_events", "events stored, by type; counted by the process that stored them",
                              ["type"], registry=registry)
        self.deliveries = Counter("obrolan_deliveries", "events handed to clients (live and long-poll answers), "
                                  "by transport", ["transport"], registry=registry)
        self.errors = Counter("obrolan_errors", "errors answered to clients, by code (docs/protocol.md)", ["code"],
                              registry=registry)
        self.slow_readers = Counter("obrolan_slow_readers_closed", "readers ended for falling more than "
                                    "--max-backlog behind, by transport", ["transport"], registry=registry)
        self.append_seconds = Histogram("obrolan_store_append_seconds", "from an append's call to the store's "
                                        "commit (what an ack waits for)", buckets=LATENCY_BUCKETS_S,
                                        registry=registry)
        self.send_seconds = Histogram("obrolan_publish_to_send_seconds", "from a batch's first event reaching a "
                                      "room to the end of its write to the room's first listener",
                                      buckets=LATENCY_BUCKETS_S, registry=registry)
        # The labelled counters of the hot path, looked up once (labels() takes a lock and a lookup).
        self._events_by_type = {kind: self.events.labels(kind) for kind in EVENT_TYPES}
        self._deliveries_by_transport = {transport: self.deliveries.labels(transport) for transport in TRANSPORTS}
        for transport in ("websocket", "stream"):
            self.slow_readers.labels(transport)

    def event_stored(self, kind: str) -> None:
        child = self._events_by_type.get(kind)
        (child or self.events.labels(kind)).inc()

    def delivered(self, transport: str, events: int) -> None:
        child = self._deliveries_by_transport.get(transport)
        (child or self.deliveries.labels(transport)).inc(events)

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()

    def store_appended(self, seconds: float) -> None:
        self.append_seconds.observe(seconds)

    def batch_sent(self, seconds: float) -> None:
        self.send_seconds.observe(seconds)

    def slow_reader_closed(self, transport: str) -> None:
        self.slow_readers.labels(transport).inc()


class CensusSink(Protocol):
    """Where a worker of several writes its census (``ops.multiproc.CensusGauges``)."""

    def publish(self, census: Census) -> None: ...


class HubCollector(Collector):
    """Gauges read from the hub at scrape time: nothing is counted on the hot path for them.

    ``census``: with several workers, the census gauges are the workers' sum, exported from their
    files; :class:`MetricsHandler` writes this process's census there (fresh for the scrape) and
    this collector yields only what is the serving process's to say: the store's ping and the
    build info (once)."""

    def __init__(self, hub: Hub, store: str, census: CensusSink | None = None) -> None:
        self.hub = hub
        self.store = store
        self.census = census
        self.store_up = 1  # set by MetricsHandler just before each scrape

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        if self.census is None:
            yield from self._census_families()
        yield GaugeMetricFamily("obrolan_store_up", "1 if the store (with --redis-url, Redis) answered a ping at "
                                "this scrape, else 0", value=self.store_up)
        if self.store == "redis":  # the shared store is Redis: the same ping, under the name alerts expect
            yield GaugeMetricFamily("obrolan_redis_up", "1 if Redis answered a ping at this scrape, else 0",
                                    value=self.store_up)
        info = GaugeMetricFamily("obrolan_build_info", "always 1; the labels say what runs",
                                 labels=["version", "store"])
        info.add_metric([version(), self.store], 1)
        yield info

    def _census_families(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        census = self.hub.census()
        connections = GaugeMetricFamily("obrolan_connections", "live connections, by transport (a long-poll "
                                        "counts while it waits)", labels=["transport"])
        live = {**census.connections, "longpoll": census.longpolls_waiting}
        for transport in sorted({*TRANSPORTS, *live}):
            connections.add_metric([transport], live.get(transport, 0))
        yield connections
        yield GaugeMetricFamily("obrolan_rooms_loaded", "rooms held in memory", value=census.rooms_loaded)
        yield members_histogram(census.room_members)
        yield GaugeMetricFamily("obrolan_longpoll_waiting", "long-polls waiting for an event",
                                value=census.longpolls_waiting)


def members_histogram_buckets(counts: list[int]) -> list[tuple[str, float]]:
    """The cumulative buckets (``le`` -> rooms) of members per loaded room, ``+Inf`` last."""
    cumulative: list[tuple[str, float]] = []
    for bound in MEMBER_BUCKETS:
        cumulative.append((str(float(bound)), sum(1 for count in counts if count <= bound)))
    cumulative.append(("+Inf", len(counts)))
    return cumulative


def room_members_family(buckets: list[tuple[str, float]], sum_value: float) -> HistogramMetricFamily:
    return HistogramMetricFamily("obrolan_room_members", "members present per loaded room (through this "
                                 "process; with several workers, per room per worker)", buckets=buckets,
                                 sum_value=sum_value)


def members_histogram(counts: list[int]) -> HistogramMetricFamily:
    """Members per loaded room, as a histogram built at scrape time from the census."""
    return room_members_family(members_histogram_buckets(counts), sum(counts))


class MetricsHandler(tornado.web.RequestHandler):
    """``GET /metrics``: pings the store (bounded), then the text exposition format."""

    def initialize(self, registry: CollectorRegistry, collector: HubCollector) -> None:
        self.registry = registry
        self.collector = collector

    async def get(self) -> None:
        try:
            await asyncio.wait_for(self.collector.hub.store.ping(), STORE_PING_TIMEOUT_S)
            self.collector.store_up = 1
        except (ChatError, TimeoutError):
            self.collector.store_up = 0
        if self.collector.census is not None:  # several workers: ours fresh, the others' at most 1 s old
            self.collector.census.publish(self.collector.hub.census())
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))


def metrics_registry() -> tuple[CollectorRegistry, PrometheusMetrics]:
    registry = CollectorRegistry()
    return registry, PrometheusMetrics(registry)


def metrics_app(hub: Hub, registry: CollectorRegistry, store: str,
                log_function: Callable[[tornado.web.RequestHandler], None],
                census: CensusSink | None = None) -> tornado.web.Application:
    """The application of the metrics listener (only ``/metrics``; anything else is 404).
    ``log_function``: the chat's access log, so that scrapes (every few seconds) stay at debug.
    ``census``: with several workers, where this one writes its census (see :class:`HubCollector`)."""
    collector = HubCollector(hub, store, census)
    registry.register(collector)
    return tornado.web.Application([(r"/metrics", MetricsHandler, {"registry": registry, "collector": collector})],
                                   log_function=log_function)
