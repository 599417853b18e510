"""Logs through structlog: one format for every line (ours, Django's, the libraries'), chosen by
`LOG_FORMAT` — `text` (the default, for a terminal) or `json` (one JSON object per line, for a log
pipeline; the Dockerfile and docker-compose set it).

Request-scoped fields (the request id, the client, the OAuth error code) live in structlog's
context variables, bound by `infra.observe` and by the code that learns them, so every line logged
while a request is handled carries its request id. Nothing secret is ever bound: no token, code,
password, client secret or Authorization header.
"""

from __future__ import annotations

import os

import structlog
from django.core.exceptions import ImproperlyConfigured

FORMATS = ("text", "json")


def shared_processors() -> list:
    """What every line gets, whether logged through structlog or the standard library."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_pid,
    ]


_pid = [os.getpid()]  # a system call per line otherwise; a forked child learns its own at once
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def add_pid(logger, method_name: str, event_dict: dict) -> dict:
    """The worker process that logged the line (several serve the same port)."""
    event_dict.setdefault("pid", _pid[0])
    return event_dict


def logging_config(log_format: str, level: str) -> dict:
    """The `LOGGING` dictConfig for `log_format`; also configures structlog to hand its events to
    the standard library, so one handler and one formatter render everything."""
    if log_format not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    structlog.configure(
        # filter_by_level first: below LOG_LEVEL an event costs one level check, nothing rendered.
        processors=[structlog.stdlib.filter_by_level, *shared_processors(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if log_format == "json":
        # format_exc_info: a traceback as one string field (never the frames' local variables).
        render = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # plain_traceback: rich (when installed) would render every frame's local variables, which
        # can hold secrets, and takes seconds per exception.
        render = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structlog": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
            "foreign_pre_chain": shared_processors(),
        }},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # The toolkit logs request bodies at DEBUG; keep it quiet so no secret reaches a log.
            "oauth2_provider": {"level": "WARNING"},
            "oauthlib": {"level": "WARNING"},
        },
    }


def begin_request(request_id: str) -> None:
    """A fresh context for the request this thread now handles (threads are reused)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def bind(**fields: str) -> None:
    """Add fields to the current request's log lines (e.g. `client_id` once the client is known)."""
    structlog.contextvars.bind_contextvars(**fields)


def bound() -> dict:
    return structlog.contextvars.get_contextvars()


def bind_request_id(request_id: str) -> dict:
    """Bind the request id alone, for an answer that binds nothing else (`infra.documents`); the
    tokens given to `unbind` put back what was there."""
    return structlog.contextvars.bind_contextvars(request_id=request_id)


def unbind(tokens: dict) -> None:
    structlog.contextvars.reset_contextvars(**tokens)


def end_request() -> None:
    structlog.contextvars.clear_contextvars()
