"""What the tests share: test servers faithful to a wire contract
(``es_servers``: Elasticsearch bulk and Logstash json_lines) and the edge agent
harness (``edge_harness``). ``tests/conftest.py`` puts ``tests/`` on sys.path,
so tests, chaos loops and benchmarks import ``support.<module>``. The harness
that starts Prometheus and Alertmanager is ``modelmon.demo.processes`` (the
demo needs it too)."""
