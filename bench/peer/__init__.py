"""The reference peer of `make bench`: node oidc-provider (bench/peer/server.js), one process, in memory.

Its package is pinned in bench/peer/package.json and package-lock.json and installed by
`make bench` with `npm ci --prefix bench/peer` (node_modules is git-ignored). This module starts
and stops it, and asks its loopback admin port for the values the scenarios spend (codes,
refresh tokens, access tokens), which the peer creates through its own models.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Where oidc-provider serves what our service serves under /p/<slug> (its default routes).
PATHS = {
    "discovery": "/.well-known/openid-configuration",
    "jwks": "/jwks",
    "register": "/reg",
    "client_credentials": "/token",
    "authorization_code": "/token",
    "refresh": "/token",
    "introspect_warm": "/token/introspection",
    "introspect_cold": "/token/introspection",
    "revoke": "/token/revocation",
}


def installed() -> bool:
    return (HERE / "node_modules" / "oidc-provider" / "package.json").is_file()


def version() -> str:
    try:
        return json.loads((HERE / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


class Peer:
    """One `node server.js` process on `port`, its admin API on `admin_port` (both loopback)."""

    def __init__(self, port: int, admin_port: int, log_path: Path):
        self.port, self.admin_port, self.log_path = port, admin_port, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        node = shutil.which("node")
        if not node:
            raise SystemExit("make bench needs Node.js 20+ for its peer (node oidc-provider)")
        if not installed():
            raise SystemExit("the bench's peer is not installed: npm ci --prefix bench/peer (make bench does it)")
        self.log = open(self.log_path, "ab")
        env = {**os.environ, "NODE_ENV": "production"}
        self.proc = subprocess.Popen(
            [node, str(HERE / "server.js"), "--port", str(self.port), "--admin-port", str(self.admin_port)],
            cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the peer exited with {self.proc.returncode}; see {self.log_path}")
            try:
                self.admin("/clients")
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"the peer did not start within 30 s; see {self.log_path}")

    def admin(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=300) as response:
            return json.load(response)

    def seed(self, kind: str, n: int) -> list[list[str]]:
        """`n` value lines of `kind` (codes, refresh, access, revocable), made by the peer's models."""
        lines: list[list[str]] = []
        while len(lines) < n:  # in chunks: one answer stays a few MB
            lines += self.admin(f"/seed?kind={kind}&n={min(20_000, n - len(lines))}")
        return lines

    def clients(self) -> dict[str, str]:
        """client_id → its HTTP Basic header, for the peer's confidential clients."""
        return {c["client_id"]: c["basic"] for c in self.admin("/clients")}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
