"""Metrics summed over the workers of ``--processes N`` (prometheus_client's multiprocess mode).

Every worker writes its counters and histograms to files of its own (named by its pid) in
``<data-dir>/metrics-<port>/``; ``chat.main`` empties that folder at start and sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker imports prometheus_client (the library picks its
value class at import).  One worker (task id 0, restarted by the parent if it dies) serves
``/metrics``: :class:`MultiProcessExport` reads every worker's files and sums them.

The gauges of the census (connections, waiting long-polls, rooms loaded, members per room) are
not counted on the hot path: each worker writes its own census to gauges with the ``livesum`` mode
every ``CENSUS_PUBLISH_S`` (and the serving worker once more at each scrape), so a scrape shows the
sum over the live workers, at most ``CENSUS_PUBLISH_S`` old.  A worker that died leaves its counts
in the counters (they happened) but its gauges are dropped at the next scrape.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from rooms.hub import Census

from . import MULTIPROC_DIR_ENV
from .metrics import MEMBER_BUCKETS, TRANSPORTS, PrometheusMetrics, members_histogram_buckets, room_members_family

# The workers' member histograms as gauges (a histogram cannot be set); the export turns them back.
ROOM_MEMBERS_CENSUS = "obrolan_room_members_census"
SUM_LABEL = "sum"


def check_multiprocess(path: Path) -> None:
    """Refuse to count into memory while the export reads files: a wiring mistake, said at start."""
    if os.environ.get(MULTIPROC_DIR_ENV) != str(path) or values.ValueClass is values.MutexValue:
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_DIR_ENV}={path} was set")


class CensusGauges:
    """This worker's census, written to its gauge files (``livesum``: summed over live workers)."""

    def __init__(self) -> None:
        self.connections = Gauge("obrolan_connections", "live connections, by transport (a long-poll counts "
                                 "while it waits), summed over the workers", ["transport"],
                                 multiprocess_mode="livesum", registry=None)
        self.rooms_loaded = Gauge("obrolan_rooms_loaded", "rooms held in memory, summed over the workers (a room "
                                  "loaded by two workers counts twice)", multiprocess_mode="livesum", registry=None)
        self.longpoll_waiting = Gauge("obrolan_longpoll_waiting", "long-polls waiting for an event, summed over "
                                      "the workers", multiprocess_mode="livesum", registry=None)
        self.members = Gauge(ROOM_MEMBERS_CENSUS, "cumulative bucket counts of members per loaded room per worker",
                             ["le"], multiprocess_mode="livesum", registry=None)

    def publish(self, census: Census) -> None:
        live = {**census.connections, "longpoll": census.longpolls_waiting}
        for transport in {*TRANSPORTS, *live}:
            self.connections.labels(transport).set(live.get(transport, 0))
        self.rooms_loaded.set(census.rooms_loaded)
        self.longpoll_waiting.set(census.longpolls_waiting)
        for le, count in members_histogram_buckets(census.room_members):
            self.members.labels(le).set(count)
        self.members.labels(SUM_LABEL).set(sum(census.room_members))


class MultiProcessExport(Collector):
    """Every worker's figures from the files, summed; the member gauges as a histogram again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = MultiProcessCollector(None, str(path))

    def collect(self) -> Iterator[Metric]:
        self._forget_dead_workers()
        for family in self.files.collect():
            if family.name == ROOM_MEMBERS_CENSUS:
                yield _members_histogram(family)
            else:
                yield family

    def _forget_dead_workers(self) -> None:
        """A worker that crashed (the parent starts another) must not count among the live ones."""
        pids = {int(Path(name).stem.rsplit("_", 1)[1])
                for name in glob.glob(os.path.join(self.path, "gauge_live*_*.db"))}
        for pid in pids:
            if not _alive(pid):
                mark_process_dead(pid, str(self.path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _members_histogram(family: Metric) -> Metric:
    by_le = {sample.labels["le"]: sample.value for sample in family.samples}
    bounds = [str(float(bound)) for bound in MEMBER_BUCKETS] + ["+Inf"]
    return room_members_family([(le, by_le.get(le, 0.0)) for le in bounds], by_le.get(SUM_LABEL, 0.0))


def multiprocess_registry(path: Path) -> tuple[CollectorRegistry, PrometheusMetrics, CensusGauges]:
    """This worker's counters (into its files), its census gauges, and the registry that exports
    the sum over every worker (used by the worker that serves ``/metrics``)."""
    check_multiprocess(path)
    registry = CollectorRegistry()
    registry.register(MultiProcessExport(path))
    return registry, PrometheusMetrics(None), CensusGauges()
