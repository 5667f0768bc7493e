"""``modelmon demo``: the whole picture on one machine, natively. Its own place
(it may import every product): the demo model server, the traffic it sends,
and the process harness that starts Prometheus and Alertmanager (also used by
the tests and benchmarks)."""
