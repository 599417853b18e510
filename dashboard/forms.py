"""Forms of the operator dashboard: every control has a label, every value is validated here."""

import re
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from oauth import redirects
from oauth.models import Application
from projects.models import Project, ProjectMember, ProjectSecret, User

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
RESERVED_SLUGS = {"new"}  # /projects/new is the creation page
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
    every way in shares (`oauth.redirects.problem`)."""
    why = redirects.problem(value)
    if why is not None:
        raise ValidationError(f"{value} {why}.")
    return value


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


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
            raise ValidationError("This slug is taken.")
        return slug

    def clean_resource(self) -> str:
        value = self.cleaned_data["resource"].strip()
        return check_resource(value) if value else ""


GRANT_CHOICES = [
    ("authorization_code", "Authorization code (with PKCE)"),
    ("refresh_token", "Refresh token"),
    ("client_credentials", "Client credentials (confidential clients only)"),
]


class ClientForm(forms.Form):
    name = forms.CharField(label="Client name", max_length=255)
    redirect_uris = forms.CharField(label="Redirect URIs", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="One per line. https, loopback http, or a private-use scheme.")
    client_type = forms.ChoiceField(label="Client type", choices=[
        (Application.CLIENT_PUBLIC, "Public (no secret: desktop, CLI, browser)"),
        (Application.CLIENT_CONFIDENTIAL, "Confidential (has a secret: server-side)"),
    ])
    grant_types = forms.MultipleChoiceField(label="Grant types", choices=GRANT_CHOICES,
                                            widget=forms.CheckboxSelectMultiple,
                                            initial=["authorization_code", "refresh_token"])
    first_party = forms.BooleanField(label="First-party (skip the consent screen)", required=False)

    def clean_redirect_uris(self) -> list[str]:
        return [check_redirect_uri(uri) for uri in lines(self.cleaned_data["redirect_uris"])]

    def clean(self):
        data = super().clean()
        grants = data.get("grant_types") or []
        if "client_credentials" in grants and data.get("client_type") != Application.CLIENT_CONFIDENTIAL:
            self.add_error("grant_types", "Client credentials needs a confidential client.")
        if "authorization_code" in grants and not data.get("redirect_uris"):
            self.add_error("redirect_uris", "The authorization code grant needs at least one redirect URI.")
        return data


class SecretForm(forms.Form):
    name = forms.CharField(label="Secret name", max_length=200)
    permissions = forms.MultipleChoiceField(
        label="Permissions", widget=forms.CheckboxSelectMultiple,
        choices=[(p, p) for p in ProjectSecret.PERMISSIONS],
    )


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
            "login_mode", "login_url", "signup_enabled",
            "token_format", "access_token_ttl", "refresh_token_ttl",
            "display_name", "logo_url", "accent_color",
        ]
        labels = {
            "cimd_enabled": "Client ID Metadata Documents (CIMD)",
            "open_registration_enabled": "Open dynamic registration",
            "secret_registration_enabled": "Registration with a project secret",
            "login_mode": "Login mode",
            "login_url": "Login URL (handoff mode)",
            "signup_enabled": "End users may sign up (hosted mode)",
            "token_format": "Access token format",
            "access_token_ttl": "Access token lifetime (seconds)",
            "refresh_token_ttl": "Refresh token lifetime (seconds)",
            "display_name": "Display name",
            "logo_url": "Logo URL",
            "accent_color": "Accent colour",
        }
        widgets = {"accent_color": forms.TextInput(attrs={"type": "color"})}
        help_texts = {
            "access_token_ttl": "60 seconds to 24 hours (3600 = one hour).",
            "refresh_token_ttl": "5 minutes to 365 days (2592000 = 30 days).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        project = self.instance
        self.fields["resources_text"].initial = "\n".join(project.resources)
        self.fields["scopes_text"].initial = "\n".join(
            f"{s['name']} — {s['description']}" if s.get("description") else s["name"] for s in project.scopes
        )

    def clean_resources_text(self) -> list[str]:
        values = [check_resource(v) for v in lines(self.cleaned_data["resources_text"])]
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
        return data

    def apply(self) -> list[str]:
        """Copy the cleaned values onto the project; the names of the fields that changed."""
        changed = [name for name in self.changed_data if name in self.Meta.fields]
        project = self.instance
        if self.cleaned_data["resources_text"] != project.resources:
            project.resources = self.cleaned_data["resources_text"]
            changed.append("resources")
        if self.cleaned_data["scopes_text"] != project.scopes:
            project.scopes = self.cleaned_data["scopes_text"]
            changed.append("scopes")
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
