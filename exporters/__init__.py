"""What turns observations into telemetry that leaves the process: model KPIs,
the Flask integration, the ``modelmon serve`` service."""
