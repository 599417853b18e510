"""The embedded default's dispatcher: without Redis there is no Celery worker or beat (tasks run
inline, in the request), so each web process runs `delivery.deliver_due` in a background thread
every WEBHOOK_SWEEP_SECONDS instead. Rows are claimed under a lease (webhooks/delivery.py), so
several processes sweeping the same database never send a delivery twice at once.
"""

import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections, connection

log = logging.getLogger("mcpauth.webhooks")
_started: dict[int, tuple[threading.Thread, threading.Event]] = {}
_lock = threading.Lock()


def sweep_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_SWEEP_SECONDS", 5))


def needed() -> bool:
    """Only where no Celery worker runs the beat task: the embedded default (Celery eager)."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER) and sweep_seconds() > 0


def run(stop: threading.Event) -> None:
    from webhooks import delivery

    while not stop.wait(sweep_seconds()):
        try:
            delivery.deliver_due()
        except Exception:  # a database hiccup must not end the thread: the next sweep tries again
            log.exception("webhook sweep failed")
        finally:
            close_old_connections()
    connection.close()


def start() -> threading.Thread | None:
    """Start this process's dispatcher once (a forked worker starts its own)."""
    if not needed():
        return None
    with _lock:
        pid = os.getpid()
        if pid not in _started:
            stop_event = threading.Event()
            thread = threading.Thread(target=run, args=(stop_event,), name="webhook-dispatcher", daemon=True)
            thread.start()
            _started[pid] = (thread, stop_event)
        return _started[pid][0]


def stop() -> None:
    """End this process's dispatcher after its current sweep (tests; a process's exit ends it anyway)."""
    with _lock:
        thread, stop_event = _started.pop(os.getpid(), (None, None))
    if thread and stop_event:
        stop_event.set()
        thread.join()
