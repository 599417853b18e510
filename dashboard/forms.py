"""Forms of the operator dashboard: every control has a label, every value is validated here."""

import ipaddress
import re
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.http import QueryDict

from infra import ratelimit
from oauth import grants
from oauth.clients import redirects
from oauth.models import Application
from projects.models import Project, ProjectMember, ProjectSecret, User

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
RESERVED_SLUGS = {"new"}  # /projects/new is the creation page
TAKEN = "This slug is taken."
LOOPBACK_HOSTS = {"127.0.0.1", "[::1]", "::1", "localhost"}


def check_resource(value: str) -> str:
    """An RFC 8707 resource: an absolute https URI (http only on loopback), without a fragment."""
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
    if not secure or not parts.netloc or parts.fragment or "#" in value:
        raise ValidationError(f"{value} is not an https URL without a fragment.")
    return value


def check_redirect_uri(value: str) -> str:
    """https, loopback http on any port (RFC 8252 §7.3), or a private-use scheme (§7.1): the rule
    every way in shares (`oauth.clients.redirects.problem`)."""
    why = redirects.problem(value)
    if why is not None:
        raise ValidationError(f"{value} {why}.")
    return value


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def as_form_data(values: dict) -> QueryDict:
    """JSON values as the dashboard's form would post them (lists repeat; booleans are "on"/absent)."""
    data = QueryDict(mutable=True)
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list):
            data.setlist(name, [str(v) for v in value])
        elif value is not None:
            data[name] = str(value)
    return data


def rate_limit_key(name: str) -> str:
    """The settings key (form field, `setproject --set` key) of one per-project rate limit."""
    return f"rate_limits.{name}"


class SignUpForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(username=email, project__isnull=True).exists():
            raise ValidationError("An operator account with this email already exists. Sign in instead.")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class ProjectForm(forms.Form):
    name = forms.CharField(label="Project name", max_length=200)
    slug = forms.CharField(label="Slug", max_length=50,
                           help_text="Lowercase letters, digits and dashes. Part of the issuer URL; cannot change.")
    resource = forms.CharField(label="MCP server URL", max_length=2000, required=False,
                               help_text="The resource this project protects, e.g. https://mcp.example.com/mcp")

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip().lower()
        if not SLUG.match(slug):
            raise ValidationError("Use 1–50 lowercase letters, digits and dashes.")
        if slug in RESERVED_SLUGS or Project.objects.filter(slug=slug).exists():
            raise ValidationError(TAKEN)
        return slug

    def clean_resource(self) -> str:
        value = self.cleaned_data["resource"].strip()
        return check_resource(value) if value else ""


def grant_choices() -> list[tuple[str, str]]:
    """The grants an operator may give a client (`oauth.grants`, those open to the dashboard's way in)."""
    return [(grant.grant_type, grant.label) for grant in grants.on_path("dashboard")]


class ClientForm(forms.Form):
    name = forms.CharField(label="Client name", max_length=255)
    redirect_uris = forms.CharField(label="Redirect URIs", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="One per line. https, loopback http, or a private-use scheme.")
    client_type = forms.ChoiceField(label="Client type", choices=[
        (Application.CLIENT_PUBLIC, "Public (no secret: desktop, CLI, browser)"),
        (Application.CLIENT_CONFIDENTIAL, "Confidential (has a secret: server-side)"),
    ])
    grant_types = forms.MultipleChoiceField(label="Grant types", choices=grant_choices,
                                            widget=forms.CheckboxSelectMultiple,
                                            initial=["authorization_code", "refresh_token"])
    first_party = forms.BooleanField(label="First-party (skip the consent screen)", required=False)

    def clean_redirect_uris(self) -> list[str]:
        return [check_redirect_uri(uri) for uri in lines(self.cleaned_data["redirect_uris"])]

    def clean(self):
        data = super().clean()
        chosen = data.get("grant_types") or []
        for grant in map(grants.find, chosen):
            if grant.confidential and data.get("client_type") != Application.CLIENT_CONFIDENTIAL:
                self.add_error("grant_types", f"{grant.grant_type} needs a confidential client.")
        if grants.AUTHORIZATION_CODE in chosen and not data.get("redirect_uris"):
            self.add_error("redirect_uris", "The authorization code grant needs at least one redirect URI.")
        return data


class SecretForm(forms.Form):
    name = forms.CharField(label="Secret name", max_length=200)
    permissions = forms.MultipleChoiceField(
        label="Permissions", widget=forms.CheckboxSelectMultiple,
        choices=[(p, p) for p in ProjectSecret.PERMISSIONS],
    )


HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check_custom_domain(value: str | None) -> str | None:
    """A project's custom domain: a lower-cased DNS host name (not an IP address, a URL, this server's
    own host or a single label), or None for none. Uniqueness is the model's constraint."""
    value = (value or "").strip().lower().rstrip(".")
    if not value:
        return None
    if "/" in value or ":" in value or not value.isascii():
        raise ValidationError("A host name only, such as auth.example.com (no scheme, port or path; "
                              "an internationalized name in its xn-- form).")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValidationError("A host name, not an IP address.")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(HOST_LABEL.fullmatch(label) for label in labels) \
            or labels[-1].isdigit():
        raise ValidationError("Not a valid host name, such as auth.example.com.")
    if value in {urlsplit(settings.PUBLIC_URL).hostname, "localhost"}:
        raise ValidationError("That is this server's own host name.")
    return value


class SettingsForm(forms.ModelForm):
    """The per-project policy. Resources and scopes are edited as lines of text."""

    resources_text = forms.CharField(
        label="Resources", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="MCP server URLs this project protects, one per line. The first is the default.",
    )
    login_url = forms.URLField(label="Login URL (handoff mode)", required=False, max_length=2000,
                               assume_scheme="https",
                               help_text="Handoff mode sends the browser here with ?authorization_request={id}.")
    logo_url = forms.URLField(label="Logo URL", required=False, max_length=2000, assume_scheme="https")
    scopes_text = forms.CharField(
        label="Scopes catalog", widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One scope per line: name, then optionally ' — ' or ' - ' and a description shown on consent.",
    )

    class Meta:
        model = Project
        fields = [
            "cimd_enabled", "open_registration_enabled", "secret_registration_enabled",
            "login_mode", "login_url", "signup_enabled", "email_signin_enabled", "require_verified_email", "email_in_tokens",
            "device_grant",
            "token_format", "access_token_ttl", "refresh_token_ttl", "openid", "dpop", "dpop_nonce",
            "display_name", "logo_url", "accent_color",
            "open_client_cap", "unused_client_days", "idle_client_days", "key_rotation_days",
            "custom_domain",
            "require_mfa",
        ]
        labels = {
            "cimd_enabled": "Client ID Metadata Documents (CIMD)",
            "open_registration_enabled": "Open dynamic registration",
            "secret_registration_enabled": "Registration with a project secret",
            "login_mode": "Login mode",
            "login_url": "Login URL (handoff mode)",
            "signup_enabled": "End users may sign up (hosted mode)",
            "email_signin_enabled": "Sign-in with email and password (hosted mode)",
            "require_verified_email": "End users must verify their email to authorize",
            "email_in_tokens": "Verified email in access tokens and introspection",
            "device_grant": "Device authorization grant (RFC 8628)",
            "token_format": "Access token format",
            "access_token_ttl": "Access token lifetime (seconds)",
            "refresh_token_ttl": "Refresh token lifetime (seconds)",
            "openid": "OpenID Connect (ID tokens, userinfo)",
            "dpop": "DPoP sender-constrained tokens (RFC 9449)",
            "dpop_nonce": "DPoP proofs must carry a server nonce",
            "display_name": "Display name",
            "logo_url": "Logo URL",
            "accent_color": "Accent colour",
            "open_client_cap": "Most open-registered clients",
            "unused_client_days": "Remove never-used open and CIMD clients after (days)",
            "idle_client_days": "Remove idle open and CIMD clients after (days)",
            "key_rotation_days": "Rotate the signing key every (days)",
            "custom_domain": "Custom domain",
            "require_mfa": "Members must use two-factor authentication",
        }
        widgets = {"accent_color": forms.TextInput(attrs={"type": "color"})}
        help_texts = {
            "access_token_ttl": "60 seconds to 24 hours (3600 = one hour).",
            "refresh_token_ttl": "5 minutes to 365 days (2592000 = 30 days).",
            "open_client_cap": "Registrations beyond it get 429 until the reaper frees room.",
            "email_signin_enabled": "Off: the sign-in page shows only the identity providers' buttons "
                                    "(Identity providers tab).",
            "unused_client_days": "0 keeps them.",
            "idle_client_days": "0 keeps them.",
            "key_rotation_days": "0: rotate by hand only.",
            "custom_domain": "A host name such as auth.example.com, pointed at this server (DNS, TLS at your proxy); "
                             "the issuer is then https://{domain}. Blank for none; /p/{slug} always works.",
            "require_verified_email": "An end user whose email is unverified stops at a “check your email” page "
                                      "until they open the link we send (hosted mode).",
            "email_in_tokens": "Introspection answers and JWT access tokens carry email and email_verified, "
                               "for verified emails only; off, they say nothing about email.",
            "device_grant": "Sign-in by code for clients without a browser of their own (VS Code remote, CLIs), "
                            "for clients that register it.",
            "openid": "Clients that ask for the openid scope get an ID token (RS256, or ES256 if they "
                      "registered it) and may call /oauth/userinfo; adds openid, profile and email to the scopes.",
            "dpop": "Turn on only once your MCP servers check DPoP proofs (mcpauth_rs does); see docs/dpop.md.",
            "dpop_nonce": "RFC 9449 §8: limits how long a stolen proof is worth; costs clients one extra round trip.",
            "require_mfa": "A member without a second factor is sent to add one before opening the project, and "
                           "their API tokens are refused for it. Only an owner changes this; the Members page shows who has one (docs/operators.md).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        project = self.instance
        self.original = {name: getattr(project, name) for name in self.Meta.fields}
        for name in ("open_client_cap", "unused_client_days", "idle_client_days", "key_rotation_days"):
            self.fields[name].required = False
        self.fields["dpop"].required = False  # a form without it (an older page, a script) keeps the value
        for limit in ratelimit.PROJECT_LIMITS:
            default = ratelimit.format_windows((w.limit, w.seconds) for w in limit.default)
            own = (project.rate_limits or {}).get(limit.name)
            self.fields[rate_limit_key(limit.name)] = forms.CharField(
                label=limit.label, required=False, max_length=200,
                initial=ratelimit.format_windows(own) if own else "",
                help_text=f"Default {default}. Count / window (s, m, h or d), comma-separated; blank for the default.",
                widget=forms.TextInput(attrs={"placeholder": default}),
            )
        self.fields["resources_text"].initial = "\n".join(project.resources)
        self.fields["scopes_text"].initial = "\n".join(
            f"{s['name']} — {s['description']}" if s.get("description") else s["name"] for s in project.scopes
        )

    def clean_resources_text(self) -> list[str]:
        values = [check_resource(v) for v in lines(self.cleaned_data["resources_text"])]
        if not values:  # tokens are issued for a resource: without one the project could issue none
            raise ValidationError("List at least one resource (the URL of the MCP server this project protects).")
        if len(set(values)) != len(values):
            raise ValidationError("Each resource may appear once.")
        return values

    def clean_scopes_text(self) -> list[dict]:
        catalog: list[dict] = []
        for line in lines(self.cleaned_data["scopes_text"]):
            parts = re.split(r"\s+[—-]\s+", line, maxsplit=1)
            name, description = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
            if not SCOPE_TOKEN.match(name):
                raise ValidationError(f"“{name}” is not a valid scope name (no spaces, quotes or backslashes).")
            if name in {s["name"] for s in catalog}:
                raise ValidationError(f"Scope {name} is listed twice.")
            catalog.append({"name": name, "description": description[:300]})
        if not catalog:
            raise ValidationError("List at least one scope.")
        return catalog

    def clean_access_token_ttl(self) -> int:
        value = self.cleaned_data["access_token_ttl"]
        if not 60 <= value <= 24 * 3600:
            raise ValidationError("Between 60 seconds and 24 hours.")
        return value

    def clean_refresh_token_ttl(self) -> int:
        value = self.cleaned_data["refresh_token_ttl"]
        if not 300 <= value <= 365 * 24 * 3600:
            raise ValidationError("Between 5 minutes and 365 days.")
        return value

    def clean_open_client_cap(self) -> int:
        return self._at_most("open_client_cap", 1_000_000)

    def clean_unused_client_days(self) -> int:
        return self._at_most("unused_client_days", 3650)

    def clean_idle_client_days(self) -> int:
        return self._at_most("idle_client_days", 3650)

    def clean_dpop(self) -> str:
        return self.cleaned_data["dpop"] or self.original["dpop"]

    def clean_key_rotation_days(self) -> int:
        return self._at_most("key_rotation_days", 3650)

    def _at_most(self, name: str, most: int) -> int:
        value = self.cleaned_data[name]
        if value is None:  # a form posted without it (older pages and scripts) keeps the current value
            return getattr(self.instance, name)
        if not 0 <= value <= most:
            raise ValidationError(f"From 0 to {most}.")
        return value

    def clean_custom_domain(self) -> str | None:
        return check_custom_domain(self.cleaned_data.get("custom_domain"))

    def clean_accent_color(self) -> str:
        value = self.cleaned_data["accent_color"].lower()
        if not re.fullmatch(r"#[0-9a-f]{6}", value):
            raise ValidationError("A colour like #4f46e5.")
        return value

    def clean_logo_url(self) -> str:
        value = self.cleaned_data["logo_url"]
        if value and not value.startswith("https://"):
            raise ValidationError("The logo must be served over https.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("login_mode") == Project.LoginMode.HANDOFF and not data.get("login_url"):
            self.add_error("login_url", "Handoff mode needs the URL of your login page.")
        self.rate_limits = {}
        for limit in ratelimit.PROJECT_LIMITS:
            text = (data.get(rate_limit_key(limit.name)) or "").strip()
            try:
                if text:
                    self.rate_limits[limit.name] = ratelimit.parse_windows(text)
            except ValueError as exc:
                self.add_error(rate_limit_key(limit.name), str(exc))
        return data

    @property
    def rate_limit_fields(self) -> list:
        return [self[rate_limit_key(limit.name)] for limit in ratelimit.PROJECT_LIMITS]

    def apply(self) -> list[str]:
        """Copy the cleaned values onto the project; the names of the fields that changed."""
        project = self.instance
        changed = [name for name in self.Meta.fields if getattr(project, name) != self.original[name]]
        if self.cleaned_data["resources_text"] != project.resources:
            project.resources = self.cleaned_data["resources_text"]
            changed.append("resources")
        if self.cleaned_data["scopes_text"] != project.scopes:
            project.scopes = self.cleaned_data["scopes_text"]
            changed.append("scopes")
        if self.rate_limits != (project.rate_limits or {}):
            project.rate_limits = self.rate_limits
            changed.append("rate_limits")
        return changed


class MemberForm(forms.Form):
    email = forms.EmailField(label="Operator email")
    role = forms.ChoiceField(label="Role", choices=ProjectMember.Role.choices, initial=ProjectMember.Role.VIEWER)

    def clean_email(self) -> User:
        email = self.cleaned_data["email"].strip().lower()
        user = User.objects.filter(username=email, project__isnull=True, is_active=True).first()
        if user is None:
            raise ValidationError("No operator has this email. Ask them to sign up first.")
        return user


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=ProjectMember.Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(label="Token name", max_length=200)
