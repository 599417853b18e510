"""Seeding for `make bench`: a project with clients, codes and tokens, written straight to PostgreSQL.

A handful of rows (operator, project, end user, clients) go through our own models, so secrets
are hashed and keys generated exactly as in production. Bulk rows (tokens by the thousand or the
million, codes, background clients) are streamed with `COPY ... FROM STDIN`, in the same shape
the token endpoint stores them (see `token_checksum`); before every scenario the driver redeems
one seeded value over HTTP, so a shape that drifted from the real one shows up as a failed probe
instead of as a fast error path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

from django.db import connection, models, transaction
from django.utils import timezone

REDIRECT_URI = "http://127.0.0.1:33418/callback"
RESOURCE = "https://mcp.bench.example/mcp"
SCOPE = "mcp:tools offline_access"
CC_SCOPE = "mcp:tools"


# --- the stored shape of a token -------------------------------------------------------------------


def token_checksum(raw: str) -> str:
    """The indexed lookup column of access and refresh tokens (the toolkit's SHA-256 checksum)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def new_access_token() -> str:
    from projects.secrets import ACCESS_TOKEN_PREFIX, generate

    return generate(ACCESS_TOKEN_PREFIX)


def new_refresh_token() -> str:
    from projects.secrets import REFRESH_TOKEN_PREFIX, generate

    return generate(REFRESH_TOKEN_PREFIX)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-urlencoded, then Base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


# --- COPY -------------------------------------------------------------------------------------------


def _column_defaults(model) -> list[tuple[models.Field, object]]:
    """Every concrete column but an auto primary key, with the value a row gets when not given."""
    now = timezone.now()
    columns = []
    for f in model._meta.concrete_fields:
        if f.primary_key and isinstance(f, models.AutoField | models.BigAutoField):
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            default = now
        elif f.has_default() and callable(f.default):
            default = f.default  # called per row (unique defaults such as client ids)
        else:
            default = f.get_default()
        columns.append((f, default))
    return columns


def copy_rows(model, rows: Iterable[dict]) -> int:
    """Stream `rows` (dicts keyed by attname) into `model`'s table with COPY; returns the count."""
    columns = _column_defaults(model)
    names = ", ".join(connection.ops.quote_name(f.column) for f, _ in columns)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = []
            for f, default in columns:
                value = row[f.attname] if f.attname in row else (default() if callable(default) else default)
                if isinstance(f, models.JSONField) and value is not None:
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)
            count += 1
    return count


# --- the world ----------------------------------------------------------------------------------------


@dataclass
class Client:
    pk: int
    client_id: str
    secret: str = ""

    @property
    def basic(self) -> str:
        return basic_auth(self.client_id, self.secret)


@dataclass
class World:
    """What the scenarios need to know about the seeded project."""

    slug: str
    project_pk: int
    end_user_pk: int
    introspect_secret: str  # a project secret holding `introspect` (Bearer)
    public_client: Client  # authorization_code + refresh_token, token_endpoint_auth_method none
    revoke_client: Client  # confidential; owns the tokens the revocation scenario revokes
    cc_clients: list[Client] = field(default_factory=list)

    @property
    def base_path(self) -> str:
        return f"/p/{self.slug}"


def create_world(slug: str = "bench", cc_clients: int = 20) -> World:
    from oauth.models import Application
    from projects.models import Project, ProjectSecret, User

    with transaction.atomic():
        owner = User.objects.create_operator(f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16))
        project, _registration_secret = Project.objects.create_project(
            owner=owner, name="Bench", slug=slug, resources=[RESOURCE]
        )
        project.open_client_cap = 2_000_000_000  # registration is measured, not capped
        project.save(update_fields=["open_client_cap", "updated_at"])
        _, introspect_secret = ProjectSecret.issue(project, "Bench introspection", ["introspect"])
        end_user = User.objects.create_end_user(project, "bench-user@example.com")

        def make(name: str, *, confidential: bool, grants: list[str]) -> Client:
            secret = ("mcpcs_" + secrets.token_urlsafe(32)) if confidential else ""
            toolkit_grant = (Application.GRANT_CLIENT_CREDENTIALS if grants == ["client_credentials"]
                             else Application.GRANT_AUTHORIZATION_CODE)
            app = Application.objects.create(
                project=project, name=name,
                client_type=Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC,
                authorization_grant_type=toolkit_grant,
                client_secret=secret, hash_client_secret=True,
                redirect_uris="" if grants == ["client_credentials"] else REDIRECT_URI,
                registration_path=Application.Path.SECRET if confidential else Application.Path.OPEN,
                first_party=confidential,
                metadata={
                    "client_name": name,
                    "grant_types": grants,
                    "token_endpoint_auth_method": "client_secret_basic" if confidential else "none",
                    **({"redirect_uris": [REDIRECT_URI], "response_types": ["code"]}
                       if "authorization_code" in grants else {}),
                },
            )
            return Client(pk=app.pk, client_id=app.client_id, secret=secret)

        public = make("Bench public client", confidential=False, grants=["authorization_code", "refresh_token"])
        revoker = make("Bench revoking client", confidential=True, grants=["client_credentials"])
        ccs = [make(f"Bench service {i}", confidential=True, grants=["client_credentials"]) for i in range(cc_clients)]
    return World(slug=slug, project_pk=project.pk, end_user_pk=end_user.pk, introspect_secret=introspect_secret,
                 public_client=public, revoke_client=revoker, cc_clients=ccs)


def access_tokens(world: World, n: int, client: Client, *, user: bool = False, scope: str = CC_SCOPE,
                  ttl: int = 3600) -> list[str]:
    """`n` live opaque access tokens of `client`; returns the plaintext values."""
    from oauth.models import AccessToken

    values = [new_access_token() for _ in range(n)]
    expires = timezone.now() + timedelta(seconds=ttl)
    copy_rows(AccessToken, ({
        "token": "", "token_checksum": token_checksum(v), "application_id": client.pk,
        "user_id": world.end_user_pk if user else None, "expires": expires, "scope": scope,
        "resource": [RESOURCE],
    } for v in values))
    return values


def refresh_tokens(world: World, n: int) -> list[str]:
    """`n` live refresh tokens of the public client, each with the access token it came with."""
    from oauth.models import AccessToken, RefreshToken

    access = access_tokens(world, n, world.public_client, user=True, scope=SCOPE)
    checksums = [token_checksum(a) for a in access]
    ids = {}
    for start in range(0, len(checksums), 10_000):  # PostgreSQL binds at most 65,535 parameters
        ids.update(AccessToken.objects.filter(token_checksum__in=checksums[start:start + 10_000])
                   .values_list("token_checksum", "pk"))
    values = [new_refresh_token() for _ in range(n)]
    copy_rows(RefreshToken, ({
        "token": "", "token_checksum": token_checksum(v), "application_id": world.public_client.pk,
        "user_id": world.end_user_pk, "access_token_id": ids[token_checksum(a)], "token_family": uuid.uuid4(),
        "resource": [RESOURCE], "scope": SCOPE,
    } for v, a in zip(values, access, strict=True)))
    return values


def authorization_codes(world: World, n: int, ttl: int = 60) -> list[tuple[str, str]]:
    """`n` fresh codes for the public client with S256 challenges; returns (code, verifier) pairs."""
    from oauth.models import Grant

    pairs = []
    rows = []
    expires = timezone.now() + timedelta(seconds=ttl)
    for _ in range(n):
        code = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        pairs.append((code, verifier))
        rows.append({
            "code": code, "application_id": world.public_client.pk, "user_id": world.end_user_pk,
            "expires": expires, "redirect_uri": REDIRECT_URI, "scope": SCOPE, "code_challenge": challenge,
            "code_challenge_method": "S256", "resource": [RESOURCE],
        })
    copy_rows(Grant, rows)
    return pairs


# --- scale: background rows ---------------------------------------------------------------------------


def background_clients(world: World, n: int) -> list[int]:
    """`n` dashboard-made confidential clients of the bench project (never used by a scenario)."""
    from django.contrib.auth.hashers import make_password

    from oauth.models import Application

    hashed = make_password("mcpcs_" + secrets.token_urlsafe(32), hasher="mcpauth_hmac")  # one value for all
    now = timezone.now()
    start = Application.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def rows() -> Iterator[dict]:
        for i in range(n):
            yield {
                "project_id": world.project_pk, "client_id": f"bg{i:07d}{secrets.token_hex(8)}",
                "name": f"Background client {i}", "client_type": Application.CLIENT_CONFIDENTIAL,
                "authorization_grant_type": Application.GRANT_CLIENT_CREDENTIALS, "client_secret": hashed,
                "hash_client_secret": True, "registration_path": Application.Path.DASHBOARD,
                "metadata": {"grant_types": ["client_credentials"]}, "created": now, "updated": now,
            }

    copy_rows(Application, rows())
    return list(Application.objects.filter(project_id=world.project_pk, pk__gt=start, client_id__startswith="bg")
                .values_list("pk", flat=True))


def background_tokens(world: World, n: int, client_pks: list[int], batch: int = 100_000) -> int:
    """`n` access tokens spread over `client_pks` (a third of them expired), streamed in batches."""
    from oauth.models import AccessToken

    now = timezone.now()
    live, dead = now + timedelta(hours=1), now - timedelta(hours=1)
    done = 0
    while done < n:
        size = min(batch, n - done)

        def rows(offset: int = done, size: int = size) -> Iterator[dict]:
            for i in range(offset, offset + size):
                yield {
                    "token": "", "token_checksum": token_checksum(secrets.token_urlsafe(32)),
                    "application_id": client_pks[i % len(client_pks)], "expires": dead if i % 3 == 0 else live,
                    "scope": CC_SCOPE, "resource": [RESOURCE],
                }

        done += copy_rows(AccessToken, rows())
    return done


def analyze() -> None:
    """Fresh planner statistics after a bulk load (as autovacuum would do, only now)."""
    from oauth.models import AccessToken, Application, Grant, RefreshToken

    with connection.cursor() as cursor:
        for model in (AccessToken, RefreshToken, Grant, Application):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


# --- value files for the Lua scripts --------------------------------------------------------------------


def write_values(path, lines: Iterable[Iterable[str]]) -> int:
    """One tab-separated line per value; no field may hold a tab or a newline."""
    count = 0
    with open(path, "w") as out:
        for fields in lines:
            fields = [str(f) for f in fields]
            if any("\t" in f or "\n" in f for f in fields):
                raise ValueError("a value holds a tab or a newline")
            out.write("\t".join(fields) + "\n")
            count += 1
    return count


def read_values(path) -> list[list[str]]:
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]

