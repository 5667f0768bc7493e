"""What a strict consumer says of a /metrics answer (shared by the hostile-input tests)."""

from __future__ import annotations

from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

TEXT = "text/plain; version=0.0.4"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def scrape(client: Any) -> dict[str, str]:
    """Both formats of GET /metrics, each checked by its parser; {accept: body}."""
    bodies = {}
    for accept in (TEXT, OPENMETRICS):
        answer = client.get("/metrics", headers={"Accept": accept})
        assert answer.status_code == 200, answer.data[:500]
        body = answer.data.decode("utf-8")
        if accept == OPENMETRICS:
            assert body.endswith("# EOF\n")
            list(parse_om(body))
        else:
            list(parse_text(body))
        bodies[accept] = body
    return bodies


def scrape_quick(client: Any) -> None:
    """Both formats answer 200 with UTF-8 text free of characters no consumer takes.

    The parsers cost ~100x the render; callers run ``scrape`` when the series
    may have changed and this in between.
    """
    from modelmon.labels import label_value_problem

    for accept in (TEXT, OPENMETRICS):
        answer = client.get("/metrics", headers={"Accept": accept})
        assert answer.status_code == 200, answer.data[:500]
        for line in answer.data.decode("utf-8").splitlines():
            assert label_value_problem(line) is None, line


def series_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line and not line.startswith("#")]
