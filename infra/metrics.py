"""Prometheus metrics: the instruments, what each counts, and the text exposition for `/metrics`.

prometheus-client's multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set (the shipped server
sets it, `mcpauth_service.serve`), every worker process writes its values to its own memory-mapped
files in that directory and a scrape sums the files of every worker, live or replaced. The variable
is read when prometheus-client is first imported, so it must be in the environment before the
workers start; without it (tests, `manage.py`) the values live in this process's default registry.

Recording is a counter increment on the hot path. Labels take bounded values only: a route name,
a status code, an RFC error code, a grant type, a limit's name, and a project's slug (as many series
as projects: `project` is on the per-project families only); never a path, a client or a user.
Per-project counts come through `activity.record`, the one call that also counts them for the dashboard.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the standard text format, version 0.0.4
# Seconds: the token endpoint answers in milliseconds; CIMD fetches and cold starts take longer.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

requests_total = Counter("mcpauth_http_requests", "HTTP requests answered, by route name and status.",
                         ["endpoint", "status"])
request_seconds = Histogram("mcpauth_http_request_duration_seconds", "Time to answer a request, by route name.",
                            ["endpoint"], buckets=LATENCY_BUCKETS)
tokens_issued = Counter("mcpauth_tokens_issued", "Access tokens issued, by project and grant type.",
                        ["project", "grant_type"])
refusals = Counter("mcpauth_oauth_errors", "Refused OAuth requests, by project, endpoint (route name) and RFC "
                   "error code (`rate_limited` for a 429).", ["project", "endpoint", "error"])
activity_events = Counter("mcpauth_activity_events", "Registrations, sign-ins, consent decisions, "
                          "authorizations, revocations and detected replays, by project, kind and outcome.",
                          ["project", "kind", "outcome"])
rate_limited = Counter("mcpauth_rate_limited", "Requests refused by a rate limit or cap, by its name.", ["limit"])
cimd_fetches = Counter("mcpauth_cimd_fetches", "Client ID Metadata Document fetches, by outcome "
                       "(ok, http_error, timeout, refused, error).", ["outcome"])
introspection_cache = Counter("mcpauth_introspection_cache", "Introspection answers from the shared cache "
                              "(hit) or the database (miss).", ["result"])
celery_tasks = Counter("mcpauth_celery_tasks", "Celery task outcomes (success, failure, retry), by task name.",
                       ["task", "outcome"])


@functools.cache  # labels are bounded, so is this; saves `labels()`'s lock and lookup on every request
def request_counters(endpoint: str, status: int):
    return requests_total.labels(endpoint, str(status)), request_seconds.labels(endpoint)


@functools.cache  # two children: `hit`, `miss`
def introspection_result(result: str):
    return introspection_cache.labels(result)


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    count, latency = request_counters(endpoint, status)
    count.inc()
    latency.observe(seconds)


def activity(project: str, kind: str, label: str, endpoint: str = "") -> None:
    """One count of `activity.record` (its kinds: `issued`, `refused`, and the others)."""
    if kind == "issued":
        tokens_issued.labels(project, label).inc()
    elif kind == "refused":
        refusals.labels(project, endpoint, label).inc()
    else:
        activity_events.labels(project, kind, label).inc()


def exposition() -> bytes:
    """Every worker's values (multiprocess mode) or this process's, in the text format."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prepare_multiprocess_dir(var_dir: Path) -> Path:
    """The directory the workers write to: `PROMETHEUS_MULTIPROC_DIR`, else `var/prometheus`; emptied
    of the previous run's value files (prometheus-client asks for that before start-up, or the old
    counts would be summed in) and exported to the workers through the environment."""
    path = Path(os.environ.get(MULTIPROC_ENV) or var_dir / "prometheus")
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # only what prometheus-client writes there
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def count_celery_tasks() -> None:
    """Count each task's outcome in the process that runs it (the web workers in the embedded
    default, whose Celery is eager; a Celery worker process otherwise: see docs/operations.md)."""
    from celery import signals

    for signal, outcome in ((signals.task_success, "success"), (signals.task_failure, "failure"),
                            (signals.task_retry, "retry")):
        signal.connect(_counter_for(outcome), weak=False)


def _counter_for(outcome: str):
    def count(sender=None, **kwargs) -> None:
        celery_tasks.labels(getattr(sender, "name", "unknown"), outcome).inc()

    return count
