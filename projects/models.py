"""Tenants: projects (one issuer each), their operators, secrets, signing keys and audit trail."""

import secrets as pysecrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from infra import rows
from infra.localcache import LocalCache, now_and_at_commit

from . import keys
from . import secrets as tokens

# Projects, clients and project secrets read on hot paths, kept in process while no change was
# made anywhere (infra/localcache.py), and at most this many seconds.
local_cache = LocalCache(ttl=10.0)

DEFAULT_SCOPES = [
    {"name": "mcp:tools", "description": "Use the server's tools"},
    {"name": "mcp:resources", "description": "Read the server's resources"},
    {"name": "mcp:prompts", "description": "Use the server's prompts"},
    {"name": "offline_access", "description": "Stay connected when you are away (refresh tokens)"},
]
# OpenID Connect Core §3.1.2.1 and §5.4: offered on top of the catalog while the project has OpenID
# Connect on (`Project.openid`), never asked for by default.
OPENID_SCOPES = [
    {"name": "openid", "description": "Sign you in with your account here"},
    {"name": "profile", "description": "See your name"},
    {"name": "email", "description": "See your email address"},
]


class UserManager(BaseUserManager):
    def create_operator(self, email: str, password: str | None) -> "User":
        email = self.normalize_email(email).lower()
        user = self.model(username=email, email=email)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_end_user(self, project: "Project", email: str = "", password: str | None = None,
                        subject: str = "") -> "User":
        """An end user of one project; `subject` is their stable `sub` (generated unless vouched for)."""
        email = self.normalize_email(email).lower() if email else ""
        subject = subject or "usr_" + pysecrets.token_urlsafe(16)
        user = self.model(username=f"{project.pk}:{subject}", email=email, project=project, subject=subject)
        user.set_password(password) if password else user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra) -> "User":
        user = self.create_operator(username, password)
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """An operator (project is null) or an end user of exactly one project.

    End users are kept apart from operators by construction: the dashboard's auth backend only
    loads rows with no project, and the authorize flow only those of the request's project.
    """

    username = models.CharField(max_length=320, unique=True)  # operators: email; end users: "{project}:{sub}"
    email = models.EmailField(max_length=254, blank=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="end_users"
    )
    subject = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When the person proved they read mail at `email` (a verification link, or an upstream identity
    # provider that vouched for it); null: unverified. Only a verified email links identities or
    # goes into a token (docs/identity.md).
    email_verified_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "email"], condition=Q(project__isnull=False) & ~Q(email=""),
                name="end_user_email_unique_per_project",
            ),
            models.UniqueConstraint(
                fields=["project", "subject"], condition=Q(project__isnull=False),
                name="end_user_subject_unique_per_project",
            ),
        ]

    @property
    def is_operator(self) -> bool:
        return self.project_id is None

    def __str__(self) -> str:
        return self.email or self.subject or self.username


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ProjectQuerySet":
        """The one helper that says which projects an operator may see."""
        if not user.is_authenticated or not user.is_operator:
            return self.none()
        return self.filter(memberships__user=user)

    def due_for_key_rotation(self, now=None) -> list["Project"]:
        """Projects with a rotation schedule whose current signing key is at least that old."""
        now = now or timezone.now()
        # The ES256 key: every project has one, and a rotation renews all of a project's keys at once.
        current = SigningKey.objects.filter(retired_at__isnull=True, alg="ES256",
                                            project__in=self.filter(key_rotation_days__gt=0))
        return [key.project for key in current.select_related("project")
                if key.created_at <= now - timedelta(days=key.project.key_rotation_days)]


def clone_row(row: models.Model) -> models.Model:
    """A shallow copy of a loaded row (its own attributes and state), cheaper than copy.copy()."""
    clone = row.__class__.__new__(row.__class__)
    clone.__dict__ = row.__dict__.copy()
    clone._state = models.base.ModelState()
    clone._state.db, clone._state.adding = row._state.db, False
    return clone


class SlugTaken(Exception):
    """Another project has this slug: it was created between the form's check and the insert."""


class ProjectManager(models.Manager.from_queryset(ProjectQuerySet)):  # type: ignore[misc]
    def cached_by_slug(self, slug: str) -> "Project | None":
        """Tenant lookup for hot paths: usually no query (infra.localcache keeps the row in
        process until any project, client or secret changes anywhere), else one."""
        project = local_cache.get_or_load(Project.cache_key_slug(slug), lambda: self.filter(slug=slug).first() or False)
        return clone_row(project) if project else None  # each request gets its own instance

    def cached_slug_for_domain(self, domain: str) -> str | None:
        def load() -> str:
            return self.filter(custom_domain=domain).values_list("slug", flat=True).first() or ""

        return local_cache.get_or_load(Project.cache_key_domain(domain), load) or None

    @transaction.atomic
    def create_project(self, *, owner: User, name: str, slug: str, resources: list[str] | None = None,
                       scopes: list[str] | None = None, **policy) -> tuple["Project", str]:
        """A project with its owner, first signing key and registration secret (returned once), all
        or nothing; `SlugTaken` when another project took the slug first (a concurrent creation)."""
        catalog = DEFAULT_SCOPES if not scopes else [{"name": s, "description": ""} for s in scopes]
        try:
            with transaction.atomic():
                project = self.create(name=name, slug=slug, resources=list(resources or []), scopes=catalog,
                                      **policy)
                ProjectMember.objects.create(project=project, user=owner, role=ProjectMember.Role.OWNER)
                SigningKey.generate(project)
                _, registration_secret = ProjectSecret.issue(
                    project, "Registration secret", list(ProjectSecret.PERMISSIONS), created_by=owner
                )
                AuditEvent.record(project, "project.created", actor=owner.email)
        except IntegrityError:
            if self.filter(slug=slug).exists():
                raise SlugTaken(slug) from None
            raise
        return project, registration_secret


TAKE_OPEN_CLIENT_SLOT = ('UPDATE "projects_project" SET "open_client_count" = "open_client_count" + 1'
                         ' WHERE "id" = %s AND "open_client_count" < "open_client_cap"')


class Project(models.Model):
    class LoginMode(models.TextChoices):
        HOSTED = "hosted", "Hosted sign-in"
        HANDOFF = "handoff", "Operator login handoff"

    class TokenFormat(models.TextChoices):
        OPAQUE = "opaque", "Opaque (introspection)"
        JWT = "jwt", "JWT (RFC 9068)"

    class Dpop(models.TextChoices):  # RFC 9449 sender-constrained tokens (oauth.dpop)
        OFF = "off", "Off: proofs ignored, bearer tokens only"
        ALLOWED = "allowed", "Allowed: a client that sends a proof gets a DPoP-bound token"
        REQUIRED = "required", "Required for public clients"

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    custom_domain = models.CharField(max_length=253, unique=True, null=True, blank=True)
    # RFC 8707 resources this issuer protects; the first is the default.
    resources = models.JSONField(default=list, blank=True)
    # Scopes catalog: [{"name": ..., "description": ...}], in display order.
    scopes = models.JSONField(default=list, blank=True)

    cimd_enabled = models.BooleanField(default=True)
    open_registration_enabled = models.BooleanField(default=True)
    secret_registration_enabled = models.BooleanField(default=True)
    open_client_cap = models.PositiveIntegerField(default=10_000)
    # The project's open-registered clients, kept by `take_open_client_slot` (one conditional
    # UPDATE per open registration), `release_open_client_slot` (client deleted) and
    # `oauth.clients.quota.recount_open_clients` (the reaper). Never written by save(): see `save`.
    open_client_count = models.PositiveIntegerField(default=0, editable=False)
    unused_client_days = models.PositiveIntegerField(default=7)
    idle_client_days = models.PositiveIntegerField(default=90)

    login_mode = models.CharField(max_length=16, choices=LoginMode.choices, default=LoginMode.HOSTED)
    login_url = models.URLField(max_length=2000, blank=True)
    signup_enabled = models.BooleanField(default=False)
    # The hosted sign-in page's email and password form; off leaves the identity providers' buttons.
    email_signin_enabled = models.BooleanField(default=True)
    # An end user whose email is not verified may not finish an authorization.
    require_verified_email = models.BooleanField(default=False)
    # Introspection and JWT access tokens carry `email` (verified emails only) when on.
    email_in_tokens = models.BooleanField(default=False)
    # Every member of the project must have a second factor to open it in the dashboard.
    require_mfa = models.BooleanField(default=False)
    # RFC 8628 device authorization grant, for clients that register it (oauth.grants.device_code).
    device_grant = models.BooleanField(default=True)

    token_format = models.CharField(max_length=16, choices=TokenFormat.choices, default=TokenFormat.OPAQUE)
    # OpenID Connect (ID tokens, userinfo, prompt/max_age) for clients that ask for `openid`.
    openid = models.BooleanField(default=False)
    access_token_ttl = models.PositiveIntegerField(default=3600)  # seconds
    refresh_token_ttl = models.PositiveIntegerField(default=30 * 24 * 3600)  # seconds
    key_rotation_days = models.PositiveIntegerField(default=90)  # 0: rotate by hand only
    # Off by default: a resource server must check DPoP proofs before clients are offered it.
    dpop = models.CharField(max_length=16, choices=Dpop.choices, default=Dpop.OFF)
    dpop_nonce = models.BooleanField(default=False)  # RFC 9449 §8: proofs must carry our DPoP-Nonce
    # The project's own rate limits, {limit name: [[count, window seconds], ...]}, for the limits
    # a project may change (infra.ratelimit.PROJECT_LIMITS); a limit not listed keeps its default.
    rate_limits = models.JSONField(default=dict, blank=True)

    display_name = models.CharField(max_length=200, blank=True)
    logo_url = models.URLField(max_length=2000, blank=True)
    accent_color = models.CharField(max_length=7, default="#4f46e5")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectManager()

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def cache_key_slug(slug: str) -> str:
        return f"project:slug:{slug}"

    @staticmethod
    def cache_key_domain(domain: str) -> str:
        return f"project:domain:{domain}"

    @property
    def issuer(self) -> str:
        """The path-form issuer: `{PUBLIC_URL}/p/{slug}`, exactly, with no trailing slash."""
        return f"{settings.PUBLIC_URL}/p/{self.slug}"

    @property
    def default_resource(self) -> str | None:
        return self.resources[0] if self.resources else None

    @property
    def offered_scopes(self) -> list[dict]:
        """The catalog, plus the OpenID Connect scopes while OpenID Connect is on."""
        if not self.openid:
            return self.scopes
        own = {s["name"] for s in self.scopes}
        return [*self.scopes, *(s for s in OPENID_SCOPES if s["name"] not in own)]

    @property
    def scope_names(self) -> list[str]:
        return [s["name"] for s in self.offered_scopes]

    @property
    def openid_scope_names(self) -> list[str]:
        """Scopes that only a client asking for them gets (never a default): OpenID Connect's, when on."""
        return [s["name"] for s in OPENID_SCOPES] if self.openid else []

    @property
    def scope_descriptions(self) -> dict[str, str]:
        return {s["name"]: s.get("description", "") for s in self.offered_scopes}

    @property
    def signing_algs(self) -> list[str]:
        """RFC 7518 algorithms this project signs with: ES256, and RS256 for ID tokens when OpenID is on."""
        return ["ES256", "RS256"] if self.openid else ["ES256"]

    @property
    def registration_enabled(self) -> bool:
        return self.open_registration_enabled or self.secret_registration_enabled

    @property
    def brand_name(self) -> str:
        return self.display_name or self.name

    def forget_cached(self) -> None:
        """No process serves this project's old row (or an old domain's) from now on."""
        stale = [self.cache_key_slug(self.slug)]
        if self.custom_domain:
            stale.append(self.cache_key_domain(self.custom_domain))
        local_cache.forget(*stale)  # and, through the generation, every other kept row

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            # A full save of a row read earlier must not write its old count back over the
            # registrations since: every column but the counter.
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name != "open_client_count"]
        super().save(*args, **kwargs)
        now_and_at_commit(self.forget_cached)

    def delete(self, *args, **kwargs):
        now_and_at_commit(self.forget_cached)
        return super().delete(*args, **kwargs)

    def open_client_slot(self) -> rows.Guard:
        """Count one more open-registered client, unless the cap is reached: the guard of the
        `rows.write` that inserts the client (nothing is written when it changes no row).

        One conditional UPDATE: its row lock, held until commit, makes concurrent registrations
        of the project take turns, and each re-reads the count the previous one committed
        (PostgreSQL re-checks the WHERE of a waiting UPDATE), so the cap holds exactly.
        """
        return rows.Guard(TAKE_OPEN_CLIENT_SLOT, (self.pk,))

    @staticmethod
    def release_open_client_slot(project_id: int) -> None:
        """An open-registered client of the project is gone."""
        Project.objects.filter(pk=project_id, open_client_count__gt=0).update(
            open_client_count=models.F("open_client_count") - 1)

    def role_of(self, user) -> str | None:
        return self.memberships.filter(user=user).values_list("role", flat=True).first()

    @transaction.atomic
    def rotate_signing_key(self, actor: str = "system") -> "SigningKey":
        """Retire the current keys (still published until their tokens can have expired) and make new
        ones, one per algorithm in use; returns the new ES256 key."""
        SigningKey.objects.filter(project=self, retired_at__isnull=True).update(retired_at=timezone.now())
        new = [SigningKey.generate(self, alg) for alg in self.signing_algs]
        self.save(update_fields=["updated_at"])  # new cache generation for JWKS/discovery
        AuditEvent.record(self, "key.rotated", actor=actor, kid=new[0].kid, kids=[k.kid for k in new])
        return new[0]


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]


class HashedCredential(models.Model):
    """A prefixed bearer credential shown once and kept as lookup prefix + keyed digest
    (projects.secrets); project secrets and operator API tokens are both one."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=32, db_index=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    LAST_USED_RESOLUTION = timedelta(seconds=60)  # bounds writes on hot paths

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def touch(self) -> None:
        """Record use, at most once per LAST_USED_RESOLUTION."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > self.LAST_USED_RESOLUTION:
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
            self.touched()

    def touched(self) -> None:
        """Extension point: called after `last_used_at` was written."""


class ProjectSecret(HashedCredential):
    """A project secret (`mcps_…`): shown once, stored as lookup prefix + keyed digest."""

    PERMISSIONS = ("register", "introspect", "exchange", "handoff")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="secrets")
    permissions = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    @classmethod
    def issue(cls, project: Project, name: str, permissions: list[str], created_by=None) -> tuple["ProjectSecret", str]:
        unknown = set(permissions) - set(cls.PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions: {', '.join(sorted(unknown))}")
        value = tokens.generate(tokens.SECRET_PREFIX)
        row = cls.objects.create(
            project=project, name=name, prefix=tokens.lookup_prefix(value), digest=tokens.digest(value),
            permissions=[p for p in cls.PERMISSIONS if p in permissions], created_by=created_by,
        )
        AuditEvent.record(project, "secret.created", actor=getattr(created_by, "email", "") or "system",
                          secret=row.prefix, permissions=row.permissions)
        return row, value

    @staticmethod
    def cache_key(project_id: int, prefix: str) -> str:
        return f"project-secret:{project_id}:{prefix}"

    @classmethod
    def _live_rows(cls, project: Project, prefix: str) -> list["ProjectSecret"]:
        """The live rows of `project` with this lookup prefix; kept in process (infra.localcache)
        until anything is saved (revoked) or deleted, so a hot secret costs no query."""
        def load() -> list["ProjectSecret"]:
            return list(cls.objects.filter(project=project, prefix=prefix, revoked_at__isnull=True))

        return local_cache.get_or_load(cls.cache_key(project.pk, prefix), load)

    @classmethod
    def authenticate(cls, project: Project, presented: str, permission: str) -> "ProjectSecret | None":
        """The live secret of `project` matching `presented` and holding `permission`, else None."""
        if not presented.startswith(tokens.SECRET_PREFIX):
            return None
        for cached in cls._live_rows(project, tokens.lookup_prefix(presented)):
            if tokens.matches(presented, cached.digest):
                if permission not in cached.permissions:
                    return None
                row = clone_row(cached)  # each caller gets its own instance
                row.permissions = list(cached.permissions)
                row.touch()
                # This process's copy learns the time it wrote (other processes write theirs once
                # too): a last-use time is bookkeeping, not something another worker must honour.
                cached.last_used_at = row.last_used_at
                return row
        return None

    def forget_cached(self) -> None:
        local_cache.forget(self.cache_key(self.project_id, self.prefix))

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        now_and_at_commit(self.forget_cached)

    def delete(self, *args, **kwargs):
        now_and_at_commit(self.forget_cached)
        return super().delete(*args, **kwargs)

    def revoke(self, actor: str = "system") -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
            AuditEvent.record(self.project, "secret.revoked", actor=actor, secret=self.prefix)


class SigningKeyQuerySet(models.QuerySet):
    def published(self, project: Project) -> "SigningKeyQuerySet":
        """The current keys plus retired keys whose tokens may still be live, of the algorithms in use."""
        horizon = timezone.now() - timedelta(seconds=max(project.access_token_ttl, oauth2_settings.ID_TOKEN_EXPIRE_SECONDS))
        return self.filter(project=project, alg__in=project.signing_algs).filter(
            Q(retired_at__isnull=True) | Q(retired_at__gt=horizon)
        ).order_by("alg", "-created_at")


class SigningKey(models.Model):
    """A signing key of one project (one current key per algorithm); the private half is encrypted
    at rest (KEY_ENCRYPTION_KEY)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="signing_keys")
    kid = models.CharField(max_length=64)
    alg = models.CharField(max_length=8, default="ES256")
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "kid"], name="kid_unique_per_project"),
            models.UniqueConstraint(fields=["project", "alg"], condition=Q(retired_at__isnull=True),
                                    name="one_current_key_per_project_and_alg"),
        ]

    @classmethod
    def generate(cls, project: Project, alg: str = "ES256") -> "SigningKey":
        public, encrypted = keys.new_key(alg)
        key = cls.objects.create(project=project, kid=public["kid"], alg=alg, public_jwk=public,
                                 private_key_encrypted=encrypted)
        # A key made on first use of an algorithm changes the published key set: every worker's
        # JWKS answer is retired at once (infra.localcache's generation), not after a memo's TTL.
        now_and_at_commit(local_cache.forget)
        return key

    @classmethod
    def current(cls, project: Project, alg: str = "ES256") -> "SigningKey":
        """The key `project` signs with in `alg`; made on first use of an algorithm the project
        turned on (by whichever worker gets there first: the constraint keeps one)."""
        try:
            return cls.objects.get(project=project, alg=alg, retired_at__isnull=True)
        except cls.DoesNotExist:
            if alg not in project.signing_algs:
                raise
        try:
            with transaction.atomic():
                return cls.generate(project, alg)
        except IntegrityError:
            return cls.objects.get(project=project, alg=alg, retired_at__isnull=True)

    @classmethod
    def ensure(cls, project: Project) -> None:
        """A current key for every algorithm `project` signs with (before anyone needs it in JWKS)."""
        for alg in project.signing_algs:
            cls.current(project, alg)

    def private_jwk(self):
        return keys.load_private(self.private_key_encrypted, self.kid, self.alg)

    def reencrypt(self) -> None:
        """Encrypt the private key under the first KEY_ENCRYPTION_KEY (after a rotation to `new,old`)."""
        self.private_key_encrypted = keys.reencrypt(self.private_key_encrypted)
        SigningKey.objects.filter(pk=self.pk).update(private_key_encrypted=self.private_key_encrypted)


keys.encrypted_columns("projects.SigningKey", "private_key_encrypted")


class AuditEvent(models.Model):
    """One security-relevant event: who did what to which client, from where, when."""

    # Indexed by the (project, …) indexes below.
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events",
                                db_index=False)
    kind = models.CharField(max_length=64)
    actor = models.CharField(max_length=320, blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-created_at"], name="audit_project_recent"),
            models.Index(fields=["project", "kind", "-created_at"], name="audit_project_kind"),
        ]

    @classmethod
    def new(cls, project: Project | None, kind: str, *, actor: str = "", client_id: str = "",
            request=None, **detail) -> "AuditEvent":
        """An unsaved event (for `rows.write` with the row it is about); `record` saves one."""
        from infra.security import client_ip

        ip = client_ip(request) if request is not None else None
        return cls(project=project, kind=kind, actor=actor[:320], client_id=client_id[:255], ip=ip or None,
                   detail=detail)

    @classmethod
    def record(cls, project: Project | None, kind: str, **fields) -> "AuditEvent":
        # as event.save(), without the ORM's SQL compiler: events are written on hot paths
        return rows.insert(cls.new(project, kind, **fields))


class AccountTokenQuerySet(models.QuerySet):
    def expired(self) -> "AccountTokenQuerySet":
        """Links a day past their expiry (kept that long to tell "expired" from "unknown" in support)."""
        return self.filter(expires_at__lte=timezone.now() - timedelta(days=1))

    def usable(self, purpose: str, value: str, project: Project | None) -> "AccountTokenQuerySet":
        """The unspent, unexpired link `value` for `purpose`, of an active person of `project`
        (None: an operator): a link of project A finds nothing at project B."""
        return self.filter(purpose=purpose, digest=tokens.digest(value), used_at__isnull=True,
                           expires_at__gt=timezone.now(), user__project=project, user__is_active=True)


class AccountToken(models.Model):
    """A link sent by email (projects.accounts): verify an address, or choose a new password.

    Kept as a keyed digest (projects.secrets), never the value; single use across workers: spending
    one locks its row and marks it used in the same transaction.
    """

    class Purpose(models.TextChoices):
        VERIFY = "verify", "Email verification"
        RESET = "reset", "Password reset"

    LIFETIMES = {Purpose.VERIFY: timedelta(hours=24), Purpose.RESET: timedelta(hours=1)}

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    digest = models.CharField(max_length=64, unique=True)
    email = models.EmailField(max_length=254)  # the address the link went to: it proves that one only
    # The pending authorization the person continues once verified (oauth.models.AuthorizationRequest).
    authorization_request = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = AccountTokenQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"], name="account_token_user_purpose")]

    @classmethod
    def issue(cls, user: User, purpose: str, authorization_request: str = "") -> str:
        """A new link's secret value for `user` (shown once, in the email)."""
        value = tokens.generate("mcpml_")
        cls.objects.create(user=user, purpose=purpose, digest=tokens.digest(value), email=user.email,
                           authorization_request=authorization_request,
                           expires_at=timezone.now() + cls.LIFETIMES[purpose])
        return value

    @classmethod
    def find(cls, purpose: str, value: str, project: Project | None) -> "AccountToken | None":
        """The usable link `value` (not spent), for showing its page."""
        if not value or "\x00" in value:
            return None
        return cls.objects.usable(purpose, value, project).select_related("user").first()

    @classmethod
    @transaction.atomic
    def spend(cls, purpose: str, value: str, project: Project | None) -> "AccountToken | None":
        """Use the link `value` once: it and every other open link of the same purpose for that
        person are spent; None if it was not usable (unknown, expired, used, another project's, or
        its address is no longer the person's)."""
        if not value or "\x00" in value:
            return None
        row = cls.objects.usable(purpose, value, project).select_for_update(of=("self",)).select_related("user").first()
        if row is None or row.email != row.user.email:
            return None
        cls.objects.filter(user=row.user, purpose=purpose, used_at__isnull=True).update(used_at=timezone.now())
        return row
