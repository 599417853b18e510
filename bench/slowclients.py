"""A bounded slow-client attack on a server on loopback, and whether a normal client is still served.

Slow connections send their request headers one byte at a time (slowloris), and others send a
body shorter than their Content-Length and then wait; meanwhile a normal client asks for a page
once per interval. Everything is bounded: a fixed number of connections, a fixed duration, then
every socket is closed. Used by `python -m bench.process_model` and by tests/e2e/test_slow_clients.py.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class SlowClientResult:
    probes: int = 0
    answered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    slow_connections_opened: int = 0

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)

    def summary(self) -> dict:
        return {"probes": self.probes, "answered": self.answered, "max_latency_ms": round(self.max_ms, 1),
                "slow_connections": self.slow_connections_opened}


def _slow_headers(port: int, stop: threading.Event, opened: list[int]) -> None:
    """Headers that never end: one byte a second until `stop`."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    opened.append(1)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        trickle = b"X-Slow: " + b"a" * 10_000
        for byte in trickle:
            if stop.wait(1.0):
                break
            sock.sendall(bytes([byte]))
    except OSError:
        pass  # the server closed it: fine
    finally:
        sock.close()


def _short_body(port: int, path: str, stop: threading.Event, opened: list[int]) -> None:
    """A POST that announces 1,000 bytes, sends 10, then waits until `stop`."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    opened.append(1)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
                     "grant_type".encode())
        stop.wait()
    except OSError:
        pass
    finally:
        sock.close()


def attack(port: int, *, slow_headers: int = 20, short_bodies: int = 2, seconds: float = 20.0,
           probe_path: str = "/healthz", body_path: str = "/oauth/token", probe_every: float = 1.0,
           probe_timeout: float = 10.0) -> SlowClientResult:
    """Runs the attack for `seconds` while probing `probe_path`; returns what the normal client saw."""
    stop = threading.Event()
    opened: list[int] = []
    threads = [threading.Thread(target=_slow_headers, args=(port, stop, opened), daemon=True)
               for _ in range(slow_headers)]
    threads += [threading.Thread(target=_short_body, args=(port, body_path, stop, opened), daemon=True)
                for _ in range(short_bodies)]
    for thread in threads:
        thread.start()
    result = SlowClientResult()
    time.sleep(min(2.0, seconds / 4))  # let the slow connections settle in first
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            result.probes += 1
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=probe_timeout)
            try:
                conn.request("GET", probe_path)
                response = conn.getresponse()
                response.read()
                if response.status < 500:
                    result.answered += 1
                    result.latencies_ms.append((time.monotonic() - started) * 1000)
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(max(0.0, probe_every - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    result.slow_connections_opened = len(opened)
    return result
