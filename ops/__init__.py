"""What the people who run Obrolan see: logs (``ops.logs``) and metrics (``ops.metrics``).

Outside the core: ``rooms/`` reaches metrics only through the ``Metrics`` port (rooms/ports.py).
"""
