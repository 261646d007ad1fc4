"""GET /metrics of `loopline serve` with its worker in a child process: one exposition from two processes
(bot/metrics.py `merged_exposition`)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics, merged_exposition


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


def test_counts_add_up_gauges_are_the_edges_and_the_childs_process_figures_are_left_out():
    edge, child = Metrics(), Metrics()
    edge.api_calls.labels("views.open", "ok").inc()
    edge.api_calls.labels("chat.postMessage", "ok").inc(2)
    child.api_calls.labels("chat.postMessage", "ok").inc(5)
    child.api_calls.labels("reactions.get", "ratelimited").inc()
    edge.ack_seconds.labels("command").observe(0.004)
    child.ack_seconds.labels("command").observe(0.2)  # not that a worker acks: histograms add up too
    edge.watch(lambda: {}, lambda: True)
    child.watch(lambda: {}, lambda: False)

    got = samples(merged_exposition(edge.registry, child.render().decode()).decode())

    def value(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert value("loopline_slack_api_calls_total", method="chat.postMessage", result="ok") == 7
    assert value("loopline_slack_api_calls_total", method="views.open", result="ok") == 1
    assert value("loopline_slack_api_calls_total", method="reactions.get", result="ratelimited") == 1
    assert value("loopline_slack_ack_seconds_count", kind="command") == 2
    assert value("loopline_slack_ack_seconds_bucket", kind="command", le="+Inf") == 2
    assert value("loopline_worker_running") == 1  # the edge's reading: it watches the child
    assert len([k for k in got if k[0] == "process_start_time_seconds"]) == 1
