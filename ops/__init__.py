"""What the people who run Obrolan see: logs (``ops.logs``) and metrics (``ops.metrics``).

Outside the core: ``rooms/`` reaches metrics only through the ``Metrics`` port (rooms/ports.py).
"""

# Constants the server reads before prometheus_client may be imported (ops.multiproc imports it).
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's folder of per-worker files
CENSUS_PUBLISH_S = 1.0  # with several workers: how old a worker's gauges may be at a scrape
