"""Fault tests (docs/reliability.md): the real server (as shipped, two workers) on its own Redis and its
own PostgreSQL database, with a dependency broken during a bounded stream of requests.

- Redis stopped, then restarted: discovery, JWKS, health and introspection keep answering (from
  the database); revocation and registration answer 503 with Retry-After (they fail closed: a
  revocation that cannot reach the introspection cache is refused, a rate limit that cannot count
  refuses); a revoked token is never reported active. After the restart everything works again.
- Redis frozen (SIGSTOP): every request gets an answer (bounded timeouts, no hang); SIGCONT after.
- PostgreSQL connections terminated (`pg_terminate_backend`), then refused (`ALLOW_CONNECTIONS
  false` on this database only; the shared server keeps running): requests answer 200 or a clean
  503; every token a client received is stored; the service recovers without a restart.
- A worker killed with SIGKILL while requests are in flight: nothing half-written (every access
  token received introspects active; tokens come in pairs; every redeemed code has its tokens).

No assertion is timed: "does not hang" means every request is answered before the HTTP client's
own timeout. Observed counts and durations are printed (`pytest -s`) for docs/reliability.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx2
import psycopg
import pytest

from tests import servers
from tests.e2e.conftest import PASSWORD, PYTHON, ROOT, Issuer, free_port, stop, wait_for_http

# One xdist worker runs the module: its stack (server, redis-server, database) is started once.
pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.xdist_group("faults")]
logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per request otherwise

REQUEST_TIMEOUT = 20.0  # seconds: an answer later than this counts as a hang (REDIS_TIMEOUT is 1 s)
REDIRECT_URI = "http://127.0.0.1/callback"


def server_command(port: int) -> list[str]:
    """The production server as shipped, with two worker processes (tests/servers.py)."""
    return servers.server_command(port, workers=2)


RESPAWN_GRACE = 6.0  # seconds between two worker kills (granian's crash-loop window is 5.5 s)


# --- the dependencies, ours to break ------------------------------------------------------------------
class RedisServer:
    """A redis-server of this test module only: random port, nothing persisted."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            stop(self.process)
            self.process = None

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


class Database:
    """This module's own PostgreSQL database (`<DATABASE_URL's database>_faults`, per xdist worker); only its own
    backends are ever terminated, and only it stops accepting connections."""

    def __init__(self):
        if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            pytest.skip("fault tests need DATABASE_URL pointing at PostgreSQL")
        self.url = servers.sibling_database_url("_faults")
        parts = urlsplit(self.url)
        self.name = parts.path.strip("/")
        self.admin = urlunsplit(parts._replace(path="/postgres"))

    def _admin(self, *statements: tuple[str, tuple]) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def recreate(self) -> None:
        self._admin((f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', ()), (f'CREATE DATABASE "{self.name}"', ()))

    def terminate_backends(self) -> None:
        self._admin(("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,)))

    def allow_connections(self, allowed: bool) -> None:
        self._admin((f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}', ()))
        if not allowed:
            self.terminate_backends()


# --- the running service --------------------------------------------------------------------------------
@dataclass
class Stack:
    issuer: Issuer
    redis: RedisServer
    database: Database
    process: subprocess.Popen
    project: dict
    client_id: str
    client_secret: str
    public_client_id: str
    subject: str
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=REQUEST_TIMEOUT))

    @property
    def base(self) -> str:
        return self.project["issuer"]

    @property
    def secret(self) -> str:
        return self.project["registration_secret"]

    def get(self, path: str) -> httpx2.Response:
        """GET a path of the project's issuer."""
        return self.http.get(self.base + path)

    def probe(self, name: str) -> httpx2.Response:
        """GET /healthz or /readyz on the origin."""
        return self.http.get(f"{self.issuer.url}/{name}")

    def client_credentials(self) -> httpx2.Response:
        return self.http.post(f"{self.base}/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(self.client_id, self.client_secret))

    def token(self) -> str:
        response = self.client_credentials()
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def introspect(self, token: str) -> httpx2.Response:
        return self.http.post(f"{self.base}/oauth/introspect", data={"token": token},
                              headers={"Authorization": f"Bearer {self.secret}"})

    def active(self, token: str) -> bool:
        response = self.introspect(token)
        assert response.status_code == 200, response.text
        return response.json()["active"]

    def revoke(self, token: str) -> httpx2.Response:
        return self.http.post(f"{self.base}/oauth/revoke", data={"token": token},
                              auth=(self.client_id, self.client_secret))

    def register(self) -> httpx2.Response:
        return self.http.post(f"{self.base}/api/oauth/register",
                              json={"client_name": "Fault test", "redirect_uris": ["https://app.example/cb"]})

    def redeem(self, code: str, verifier: str) -> httpx2.Response:
        return self.http.post(f"{self.base}/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI, "client_id": self.public_client_id})

    def refresh(self, refresh_token: str) -> httpx2.Response:
        return self.http.post(f"{self.base}/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.public_client_id})

    def codes(self, count: int) -> list[tuple[str, str]]:
        """`count` authorization codes of the public client, as /oauth/authorize stores them: (code, verifier)."""
        pairs = []
        for _ in range(count):
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            pairs.append((secrets.token_urlsafe(32), verifier, challenge))
        rows = [(code, challenge) for code, _, challenge in pairs]
        self.issuer.shell(
            "from datetime import timedelta; from django.utils import timezone; "
            "from oauth.models import Application, Grant; from projects.models import User; "
            f"c = Application.objects.get(client_id={self.public_client_id!r}); "
            f"u = User.objects.get(project=c.project, subject={self.subject!r}); "
            "Grant.objects.bulk_create([Grant(application=c, user=u, code=code, code_challenge=ch, "
            "code_challenge_method='S256', redirect_uri=" + repr(REDIRECT_URI) + ", scope='mcp:tools offline_access', "
            "expires=timezone.now() + timedelta(minutes=10), resource=[c.project.default_resource]) "
            f"for code, ch in {rows!r}])")
        return [(code, verifier) for code, verifier, _ in pairs]

    def wait_until_ready(self) -> None:
        """Recovery without a restart: /readyz turns 200 by itself (bounded number of polls)."""
        for _ in range(60):
            if self.probe("readyz").status_code == 200:
                return
            time.sleep(0.5)
        pytest.fail("the service did not become ready again")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("faults")
    database = Database()
    database.recreate()
    redis = RedisServer(workdir)
    redis.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database.url, "REDIS_URL": redis.url, "PUBLIC_URL": url,
           "SECRET_KEY": os.environ.get("SECRET_KEY") or "faults-" + secrets.token_urlsafe(48),
           "DEBUG": "false", "LOG_LEVEL": "WARNING", "MCPAUTH_VAR_DIR": str(workdir / "var"),
           "PYTHONUNBUFFERED": "1"}
    process = None
    try:
        migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300, check=False)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        log = workdir / "server.log"
        process = subprocess.Popen(server_command(port), cwd=ROOT, env=env, stdout=log.open("w"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        process.own_session = True  # stop() signals the whole group (tests/servers.py)
        wait_for_http(f"{url}/healthz", process, log)
        issuer = Issuer(url=url, env=env, workdir=workdir, operator="faults@example.com")
        issuer.manage("createoperator", "--email", issuer.operator, "--password", PASSWORD)
        project = issuer.manage("createproject", "--owner", issuer.operator, "--name", "Faults", "--slug", "faults",
                                "--resource", "https://mcp.faults.example/mcp")
        confidential = issuer.manage("createclient", "--project", "faults", "--name", "Backend", "--confidential",
                                     "--redirect-uri", "https://backend.example/cb", "--grant", "client_credentials")
        public = issuer.manage("createclient", "--project", "faults", "--name", "Public", "--redirect-uri", REDIRECT_URI)
        subject = issuer.manage("createenduser", "--project", "faults", "--email", "eve@faults.example",
                                "--password", PASSWORD)["subject"]
        yield Stack(issuer, redis, database, process, project, confidential["client_id"],
                    confidential["client_secret"], public["client_id"], subject)
    finally:
        if process is not None:
            stop(process)
        redis.stop()
        database.allow_connections(True)


# --- observing a stream of requests --------------------------------------------------------------------
def assert_unavailable(response: httpx2.Response) -> None:
    """A clean refusal: 503, Retry-After, the OAuth error shape, no trace."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in response.text


def observe(requests: dict[str, Callable[[], httpx2.Response]], rounds: int) -> dict[str, list[httpx2.Response]]:
    """Send each request `rounds` times, in turn; every one must be answered (no client timeout)."""
    seen: dict[str, list[httpx2.Response]] = {name: [] for name in requests}
    slowest: dict[str, float] = dict.fromkeys(requests, 0.0)
    for _ in range(rounds):
        for name, send in requests.items():
            started = time.monotonic()
            seen[name].append(send())
            slowest[name] = max(slowest[name], time.monotonic() - started)
    print(f"\n  {sum(map(len, seen.values()))} requests: " + ", ".join(
        f"{name} {dict(Counter(r.status_code for r in found))} (slowest {slowest[name]:.2f}s)"
        for name, found in seen.items()))
    return seen


def statuses(responses: list[httpx2.Response]) -> set[int]:
    return {r.status_code for r in responses}


def redis_outage_requests(stack: Stack, live: str, revoked: str, victim: str) -> dict[str, Callable]:
    return {
        "healthz": lambda: stack.probe("healthz"),
        "discovery": lambda: stack.get("/.well-known/oauth-authorization-server"),
        "jwks": lambda: stack.get("/.well-known/jwks.json"),
        "introspect live": lambda: stack.introspect(live),
        "introspect revoked": lambda: stack.introspect(revoked),
        "revoke": lambda: stack.revoke(victim),
        "register": stack.register,
        "client_credentials": stack.client_credentials,
        "readyz": lambda: stack.probe("readyz"),
    }


def assert_redis_outage_promises(seen: dict[str, list[httpx2.Response]]) -> None:
    for name in ("healthz", "discovery", "jwks"):
        assert statuses(seen[name]) == {200}, name
    assert all(r.status_code == 200 and r.json()["active"] is True for r in seen["introspect live"])
    # Never a revoked token reported active.
    assert all(r.status_code == 200 and r.json() == {"active": False} for r in seen["introspect revoked"])
    # Fail closed: no revocation a stale cached answer could contradict; no registration uncounted.
    for name in ("revoke", "register"):
        for response in seen[name]:
            assert_unavailable(response)
    for response in seen["client_credentials"]:
        if response.status_code != 200:
            assert_unavailable(response)
    assert all(r.status_code == 503 and r.json()["failed"] == ["redis"] for r in seen["readyz"])


def assert_recovered(stack: Stack, live: str, revoked: str, victim: str) -> None:
    stack.wait_until_ready()
    assert stack.active(live) is True
    assert stack.active(revoked) is False
    assert stack.revoke(victim).status_code == 200
    assert stack.active(victim) is False
    assert stack.register().status_code == 201


@pytest.fixture
def tokens(stack: Stack) -> tuple[str, str, str]:
    """A live token, a revoked one and a victim to revoke during the outage, all introspected once
    (so their answers are cached in Redis)."""
    live, revoked, victim = stack.token(), stack.token(), stack.token()
    assert stack.revoke(revoked).status_code == 200
    assert [stack.active(t) for t in (live, revoked, victim)] == [True, False, True]
    return live, revoked, victim


# --- the experiments -------------------------------------------------------------------------------------
def test_redis_stopped_and_restarted(stack: Stack, tokens):
    live, revoked, victim = tokens
    stack.redis.stop()
    try:
        seen = observe(redis_outage_requests(stack, live, revoked, victim), rounds=4)
    finally:
        stack.redis.start()  # same port, empty: the service reconnects by itself

    assert_redis_outage_promises(seen)
    assert_recovered(stack, live, revoked, victim)


def test_redis_frozen(stack: Stack, tokens):
    live, revoked, victim = tokens
    stack.redis.freeze()
    try:
        seen = observe(redis_outage_requests(stack, live, revoked, victim), rounds=2)
    finally:
        stack.redis.thaw()

    # Every request above was answered (none reached the client's timeout), and as when stopped.
    assert_redis_outage_promises(seen)
    assert_recovered(stack, live, revoked, victim)


def test_postgres_connections_terminated_then_refused(stack: Stack):
    received: list[str] = []
    seen: list[httpx2.Response] = []
    stop_killing = threading.Event()

    def kill_backends() -> None:
        while not stop_killing.is_set():
            stack.database.terminate_backends()
            stop_killing.wait(0.05)

    killer = threading.Thread(target=kill_backends, daemon=True)
    killer.start()
    try:
        for _ in range(30):
            response = stack.client_credentials()
            seen.append(response)
            if response.status_code == 200:
                received.append(response.json()["access_token"])
                seen.append(stack.introspect(received[-1]))
    finally:
        stop_killing.set()
        killer.join()

    stack.database.allow_connections(False)  # as if PostgreSQL were stopped, for this database only
    try:
        refused = observe({"client_credentials": stack.client_credentials,
                           "introspect": lambda: stack.introspect("mcpat_" + "x" * 43),
                           "healthz": lambda: stack.probe("healthz"),
                           "readyz": lambda: stack.probe("readyz")}, rounds=4)
    finally:
        stack.database.allow_connections(True)

    print(f"\n  connections terminated: {dict(Counter(r.status_code for r in seen))}, {len(received)} tokens received")
    for response in seen:  # answered cleanly: a result or a 503 to retry, never a 500
        if response.status_code != 200:
            assert_unavailable(response)
        elif "active" in response.json():
            assert response.json()["active"] is True  # a token handed out was stored
    for response in refused["client_credentials"] + refused["introspect"]:
        assert_unavailable(response)
    assert statuses(refused["healthz"]) == {200}
    assert all(r.status_code == 503 and r.json()["failed"] == ["database"] for r in refused["readyz"])
    # Recovered without a restart; every token a client received is stored and live.
    stack.wait_until_ready()
    assert stack.client_credentials().status_code == 200
    assert all(stack.active(token) for token in received)


def test_a_worker_killed_mid_request_leaves_nothing_half_written(stack: Stack):
    codes = stack.codes(36)
    received: list[dict] = []
    outcomes: Counter = Counter()
    lock = threading.Lock()
    queue = list(codes)

    def chain() -> None:
        """Redeem a code, then refresh twice; a request cut by the kill ends its chain."""
        while True:
            with lock:
                if not queue:
                    return
                code, verifier = queue.pop()
            try:
                response = stack.redeem(code, verifier)
                for step in range(3):
                    with lock:
                        outcomes[response.status_code] += 1
                    if response.status_code != 200:
                        break
                    issued = response.json()
                    with lock:
                        received.append(issued)
                    if step < 2:
                        response = stack.refresh(issued["refresh_token"])
            except httpx2.TransportError:
                with lock:
                    outcomes["cut"] += 1

    threads = [threading.Thread(target=chain) for _ in range(3)]
    for thread in threads:
        thread.start()
    kills, last_kill = 0, -RESPAWN_GRACE
    while any(t.is_alive() for t in threads) and kills < 3:
        with lock:
            done = sum(outcomes.values())
        # Spread over the stream by progress; granian takes a worker that dies again within 5.5 s of
        # being replaced for a crash loop and stops the server, so kills are that far apart.
        if done >= 15 * (kills + 1) and time.monotonic() - last_kill > RESPAWN_GRACE:
            workers = stack.worker_pids()
            if workers:
                os.kill(workers[kills % len(workers)], signal.SIGKILL)
                kills, last_kill = kills + 1, time.monotonic()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    print(f"\n  worker kills: {kills}, outcomes {dict(outcomes)}, {len(received)} token responses received")

    assert kills >= 1
    assert set(outcomes) <= {200, "cut"}
    # The server replaces the killed workers by itself; what was received is checked once it answers.
    wait_for_http(f"{stack.issuer.url}/healthz", stack.process, stack.issuer.workdir / "server.log")
    assert all(stack.active(issued["access_token"]) for issued in received)
    counts = json.loads(stack.issuer.shell(
        "import json; from oauth.models import AccessToken, Grant, RefreshToken; "
        f"c = {stack.public_client_id!r}; "
        "print(json.dumps({"
        "'access': AccessToken.objects.filter(application__client_id=c).count(), "
        "'refresh': RefreshToken.objects.filter(application__client_id=c).count(), "
        "'refresh_without_access': RefreshToken.objects.filter(application__client_id=c, access_token__isnull=True).count(), "
        "'redeemed_without_tokens': Grant.objects.filter(application__client_id=c, redeemed_at__isnull=False)"
        ".exclude(token_family__in=RefreshToken.objects.values('token_family')).count()}))"))
    assert counts["refresh_without_access"] == 0
    assert counts["redeemed_without_tokens"] == 0
    assert counts["access"] == counts["refresh"] >= len(received)
