"""Management REST API: what the dashboard does, for scripts, authenticated by operator API tokens.

`Authorization: Bearer mcpop_…` acts as the token's operator with their project roles: another
operator's project is a 404, a viewer's change is a 403. Errors are `{"error", "error_description"}`.
Validation is the dashboard's own (the same forms), so both paths accept exactly the same values.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.ratelimit import format_windows
from mfa import factors
from oauth import grants
from oauth.endpoints.parsing import JSON, NO_BODY, Body, check_request
from oauth.errors import OAuthError
from oauth.models import Application
from projects.models import Project, ProjectMember, ProjectSecret, SlugTaken

from . import actions, audit, clients, policy
from .decorators import OWNER, READ, WRITE
from .forms import TAKEN, ClientForm, MemberForm, ProjectForm, RoleForm, SecretForm, as_form_data
from .models import OperatorToken


class OperatorTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer mcpop_…` (RFC 6750 §2.1)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = OperatorToken.authenticate(parts[1].decode("latin-1"))
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="mcpauth"'


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.api.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An operator API token `mcpop_…` (Account page)"}


class IsOperator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_operator)


ERROR_CODES = {400: "invalid_request", 401: "invalid_token", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 415: "invalid_request", 429: "rate_limited"}
# JSON in, as at the OAuth endpoints (oauth.endpoints.parsing): 415 for any other media type, 413 past 256 KB.
API_BODY = Body((JSON,), max_bytes=256 * 1024, repeatable=frozenset())


def error_handler(exc, context):
    """The one place management-API errors become JSON."""
    if isinstance(exc, OAuthError):  # e.g. refused by oauth.endpoints.parsing before the view read anything
        return Response(exc.payload(), status=exc.status, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied("Your role in this project cannot do this.")
    if not isinstance(exc, exceptions.APIException):
        return None  # unexpected: Django logs it and answers 500 without a trace
    body = {"error": ERROR_CODES.get(exc.status_code, "invalid_request")}
    if isinstance(exc.detail, dict):
        body["error_description"] = "Some fields are invalid."
        body["fields"] = exc.detail
    else:
        body["error_description"] = str(exc.detail)
    response = Response(body, status=exc.status_code)
    if exc.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="mcpauth", error="invalid_token"'
    return response


class ManagementView(APIView):
    authentication_classes = [OperatorTokenAuthentication]
    permission_classes = [IsOperator]
    parser_classes = [JSONParser]
    reads_body = True  # False: the view's POST takes no body, whatever is sent is ignored

    def initial(self, request, *args, **kwargs):
        # Before authentication: nothing unchecked is read (oauth.endpoints.parsing).
        takes_body = self.reads_body and request.method in ("POST", "PUT", "PATCH")
        check_request(request, API_BODY if takes_body else NO_BODY)
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self):
        return error_handler

    def project(self, slug: str, roles: tuple[str, ...] = READ) -> Project:
        """`slug` if the operator is a member (else 404) with one of `roles` (else 403)."""
        project = get_object_or_404(Project.objects.visible_to(self.request.user), slug=slug)
        if project.require_mfa and not factors.has_factor(self.request.user):
            raise exceptions.PermissionDenied("This project requires two-factor authentication: add a second "
                                              "factor to your account (dashboard, Account page) to use it.")
        if project.role_of(self.request.user) not in roles:
            raise exceptions.PermissionDenied("Your role in this project cannot do this.")
        return project


def form_errors(form) -> exceptions.ValidationError:
    return exceptions.ValidationError({name: [str(e) for e in errs] for name, errs in form.errors.items()})


# --- Serializers (shapes of responses) ---------------------------------------------------------

class ScopeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)


class RateLimitsField(serializers.DictField):
    """{limit name: "10/15m, 100/1d"}: the limits the project set itself (the others have their default)."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(allow_blank=True, allow_null=True), **kwargs)

    def to_representation(self, value) -> dict[str, str]:
        return {name: format_windows(windows) for name, windows in (value or {}).items()}


class ProjectSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(read_only=True)
    scopes = ScopeSerializer(many=True)
    resources = serializers.ListField(child=serializers.URLField())
    rate_limits = RateLimitsField(help_text="Per-project rate limits (names in docs/configuration.md); "
                                            "null or \"\" puts one back to its default.")

    class Meta:
        model = Project
        # Every setting the API may change (policy.SETTINGS: the settings form's and more), so none is forgotten.
        fields = ["slug", "name", "issuer", *policy.SETTINGS, "created_at", "updated_at"]


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=50)
    resource = serializers.CharField(required=False, allow_blank=True, help_text="Default resource (MCP server URL)")


class ProjectCreatedSerializer(ProjectSerializer):
    registration_secret = serializers.CharField(help_text="Shown once: store it now.")

    class Meta(ProjectSerializer.Meta):
        fields = ProjectSerializer.Meta.fields + ["registration_secret"]


class SettingsPatchSerializer(ProjectSerializer):
    class Meta(ProjectSerializer.Meta):
        fields = [f for f in ProjectSerializer.Meta.fields if f not in ("slug", "name", "issuer", "created_at",
                                                                         "updated_at")]
        extra_kwargs = {f: {"required": False} for f in fields}


class ClientSerializer(serializers.ModelSerializer):
    redirect_uris = serializers.SerializerMethodField()
    live_tokens = serializers.IntegerField(read_only=True)
    disabled = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ["id", "client_id", "name", "registration_path", "client_type", "redirect_uris", "first_party",
                  "disabled", "disabled_at", "created", "last_used_at", "live_tokens", "fingerprint", "metadata",
                  "narrowed"]
        read_only_fields = ["narrowed"]

    def get_redirect_uris(self, client) -> list[str]:
        return client.redirect_uris.split()

    def get_disabled(self, client) -> bool:
        return client.disabled_at is not None


class ClientCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    redirect_uris = serializers.ListField(child=serializers.CharField(), required=False)
    client_type = serializers.ChoiceField(choices=Application.CLIENT_TYPES, default=Application.CLIENT_PUBLIC)
    grant_types = serializers.ListField(child=serializers.ChoiceField(
        choices=[grant.grant_type for grant in grants.on_path("dashboard")]))
    first_party = serializers.BooleanField(default=False)


class ClientCreatedSerializer(ClientSerializer):
    client_secret = serializers.CharField(required=False, help_text="Confidential clients only; shown once.")

    class Meta(ClientSerializer.Meta):
        fields = ClientSerializer.Meta.fields + ["client_secret"]


class SecretSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectSecret
        fields = ["id", "name", "prefix", "permissions", "created_at", "last_used_at", "revoked_at"]


class SecretCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=list(ProjectSecret.PERMISSIONS)))


class SecretCreatedSerializer(SecretSerializer):
    secret = serializers.CharField(help_text="Shown once: store it now.")

    class Meta(SecretSerializer.Meta):
        fields = SecretSerializer.Meta.fields + ["secret"]


class EndUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    subject = serializers.CharField()
    email = serializers.CharField()
    email_verified_at = serializers.DateTimeField(allow_null=True)  # null: unverified
    date_joined = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    live_tokens = serializers.IntegerField()


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField(source="user.email")
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)
    created_at = serializers.DateTimeField()


class MemberCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="An existing operator's email")
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    actor = serializers.CharField()
    client_id = serializers.CharField()
    ip = serializers.CharField(allow_null=True)
    detail = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AuditPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    count = serializers.IntegerField()


# --- Views -----------------------------------------------------------------------------------

class ProjectsView(ManagementView):
    @extend_schema(tags=["projects"], summary="Projects you are a member of",
                   responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = Project.objects.visible_to(request.user).order_by("name")
        return Response(ProjectSerializer(projects, many=True).data)

    @extend_schema(tags=["projects"], summary="Create a project (you become its owner)",
                   request=ProjectCreateSerializer, responses={201: ProjectCreatedSerializer})
    def post(self, request):
        form = ProjectForm(as_form_data(request.data if isinstance(request.data, dict) else {}))
        if not form.is_valid():
            raise form_errors(form)
        data = form.cleaned_data
        try:
            project, secret = Project.objects.create_project(
                owner=request.user, name=data["name"], slug=data["slug"],
                resources=[data["resource"]] if data["resource"] else [],
            )
        except SlugTaken:  # created concurrently, after the form's check
            raise exceptions.ValidationError({"slug": [TAKEN]}) from None
        body = ProjectSerializer(project).data | {"registration_secret": secret}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class ProjectView(ManagementView):
    @extend_schema(tags=["projects"], summary="A project and its settings", responses=ProjectSerializer)
    def get(self, request, slug):
        return Response(ProjectSerializer(self.project(slug)).data)

    @extend_schema(tags=["projects"], summary="Change settings (audited as settings.changed)",
                   request=SettingsPatchSerializer, responses=ProjectSerializer)
    def patch(self, request, slug):
        project = self.project(slug, WRITE)
        patch = request.data
        if not isinstance(patch, dict):
            raise exceptions.ValidationError({"non_field_errors": ["A JSON object of settings."]})
        # Read-only fields sent back unchanged from a GET are ignored; any other key is refused.
        unknown = policy.unknown_keys(patch, ProjectSerializer(project).data)
        if unknown:
            raise exceptions.ValidationError(unknown)
        try:
            policy.change_settings(project, {k: v for k, v in patch.items() if k in policy.SETTINGS}, request,
                                   role=project.role_of(request.user))
        except policy.InvalidSettings as exc:
            raise exceptions.ValidationError(exc.errors) from None
        return Response(ProjectSerializer(project).data)


class RotateKeyView(ManagementView):
    reads_body = False

    @extend_schema(tags=["projects"], summary="Rotate the signing key", request=None,
                   responses=inline_serializer("RotatedKey", {"kid": serializers.CharField()}))
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        key = project.rotate_signing_key(actor=request.user.email)
        return Response({"kid": key.kid})


class ClientsView(ManagementView):
    @extend_schema(tags=["clients"], summary="Clients (filters as in the dashboard)",
                   parameters=[OpenApiParameter(n, OpenApiTypes.STR) for n in
                               ("q", "path", "software", "status", "used", "live", "fingerprint")],
                   responses=ClientSerializer(many=True))
    def get(self, request, slug):
        found, _ = clients.filtered_clients(self.project(slug), request.query_params)
        return Response(ClientSerializer(found[:500], many=True).data)

    @extend_schema(tags=["clients"], summary="Create a pre-registered client", request=ClientCreateSerializer,
                   responses={201: ClientCreatedSerializer})
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        values = dict(request.data) if isinstance(request.data, dict) else {}
        if isinstance(values.get("redirect_uris"), list):
            values["redirect_uris"] = "\n".join(str(u) for u in values["redirect_uris"])
        form = ClientForm(as_form_data(values))
        if not form.is_valid():
            raise form_errors(form)
        client, secret = actions.create_client(project, request, **form.cleaned_data)
        client = actions.clients_of(project).get(pk=client.pk)
        body = ClientSerializer(client).data | ({"client_secret": secret} if secret else {})
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class ClientLookup:
    def client(self, slug, pk, roles=READ):
        project = self.project(slug, roles)
        return project, get_object_or_404(actions.clients_of(project), pk=pk)


class ClientView(ClientLookup, ManagementView):
    @extend_schema(tags=["clients"], summary="One client", responses=ClientSerializer)
    def get(self, request, slug, pk):
        return Response(ClientSerializer(self.client(slug, pk)[1]).data)

    @extend_schema(tags=["clients"], summary="Delete a client (its tokens go with it)", responses={204: None})
    def delete(self, request, slug, pk):
        project, client = self.client(slug, pk, WRITE)
        actions.delete_client(project, client, request)
        return Response(status=status.HTTP_204_NO_CONTENT)


ACTION_RESULT = inline_serializer("ClientActionResult", {"ok": serializers.BooleanField()})


class RevokeClientTokensView(ClientLookup, ManagementView):
    reads_body = False

    @extend_schema(tags=["clients"], summary="Revoke every token of a client", request=None, responses=ACTION_RESULT)
    def post(self, request, slug, pk):
        project, client = self.client(slug, pk, WRITE)
        actions.revoke_client_tokens(project, client, request)
        return Response({"ok": True})


class DisableClientView(ClientLookup, ManagementView):
    disabled = True
    reads_body = False

    @extend_schema(tags=["clients"], summary="Disable a client (revokes its tokens) or enable it again",
                   request=None, responses=ACTION_RESULT)
    def post(self, request, slug, pk):
        project, client = self.client(slug, pk, WRITE)
        actions.set_client_disabled(project, client, self.disabled, request)
        return Response({"ok": True})


class SecretsView(ManagementView):
    @extend_schema(tags=["secrets"], summary="Project secrets (never their values)",
                   responses=SecretSerializer(many=True))
    def get(self, request, slug):
        project = self.project(slug)
        return Response(SecretSerializer(project.secrets.order_by("-created_at"), many=True).data)

    @extend_schema(tags=["secrets"], summary="Create a secret (its value is shown once)",
                   request=SecretCreateSerializer, responses={201: SecretCreatedSerializer})
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        form = SecretForm(as_form_data(request.data if isinstance(request.data, dict) else {}))
        if not form.is_valid():
            raise form_errors(form)
        row, value = ProjectSecret.issue(project, form.cleaned_data["name"], form.cleaned_data["permissions"],
                                         created_by=request.user)
        return Response(SecretSerializer(row).data | {"secret": value}, status=status.HTTP_201_CREATED,
                        headers={"Cache-Control": "no-store"})


class SecretView(ManagementView):
    @extend_schema(tags=["secrets"], summary="Revoke a secret", responses={204: None})
    def delete(self, request, slug, pk):
        project = self.project(slug, WRITE)
        secret = get_object_or_404(ProjectSecret, project=project, pk=pk)
        secret.revoke(actor=request.user.email)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventsView(ManagementView):
    @extend_schema(tags=["audit"], summary="Audit events, newest first, 100 a page",
                   parameters=[OpenApiParameter("kind", OpenApiTypes.STR),
                               OpenApiParameter("client", OpenApiTypes.STR, description="client_id"),
                               OpenApiParameter("since", OpenApiTypes.DATE),
                               OpenApiParameter("until", OpenApiTypes.DATE),
                               OpenApiParameter("page", OpenApiTypes.INT)],
                   responses=AuditPageSerializer)
    def get(self, request, slug):
        events, _ = audit.filtered_events(self.project(slug), request.query_params)
        try:  # a page past the last is 404, not the last page again (a script paging on stops)
            page = Paginator(events, 100).page(request.query_params.get("page") or 1)
        except PageNotAnInteger:
            raise exceptions.ValidationError({"page": ["A page number."]}) from None
        except EmptyPage:
            raise exceptions.NotFound("No such page.") from None
        return Response({"results": AuditEventSerializer(page.object_list, many=True).data,
                         "page": page.number, "pages": page.paginator.num_pages, "count": page.paginator.count})




class EndUsersView(ManagementView):
    @extend_schema(tags=["end users"], summary="End users, most recently seen first (500 at most)",
                   parameters=[OpenApiParameter("q", OpenApiTypes.STR, description="email or subject contains")],
                   responses=EndUserSerializer(many=True))
    def get(self, request, slug):
        people = actions.end_users_of(self.project(slug)).order_by("-last_seen_at", "-date_joined")
        q = request.query_params.get("q", "").strip()
        if q:
            people = people.filter(Q(email__icontains=q) | Q(subject__icontains=q))
        return Response(EndUserSerializer(people[:500], many=True).data)


class EndUserRevokeView(ManagementView):
    reads_body = False

    @extend_schema(tags=["end users"], summary="Revoke everything a person granted (tokens, codes, consent)",
                   request=None, responses=inline_serializer("RevokedGrants", {"live_tokens": serializers.IntegerField()}))
    def post(self, request, slug, pk):
        project = self.project(slug, WRITE)
        person = get_object_or_404(project.end_users, pk=pk)
        return Response({"live_tokens": actions.revoke_end_user(project, person, request)})


class MembersView(ManagementView):
    @extend_schema(tags=["members"], summary="Members and their roles", responses=MemberSerializer(many=True))
    def get(self, request, slug):
        members = self.project(slug).memberships.select_related("user").order_by("role", "user__email")
        return Response(MemberSerializer(members, many=True).data)

    @extend_schema(tags=["members"], summary="Add an operator by email (owners only)",
                   request=MemberCreateSerializer, responses={201: MemberSerializer})
    def post(self, request, slug):
        project = self.project(slug, OWNER)
        form = MemberForm(as_form_data(request.data if isinstance(request.data, dict) else {}))
        if not form.is_valid():
            raise form_errors(form)
        member = actions.add_member(project, form.cleaned_data["email"], form.cleaned_data["role"], request)
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberView(ManagementView):
    def member(self, slug, pk):
        project = self.project(slug, OWNER)
        return project, get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=pk)

    def change(self, request, project, member, role):
        try:
            actions.change_role(project, member, role, request)
        except actions.LastOwner:
            raise exceptions.ValidationError({"role": ["A project needs at least one owner."]}) from None

    @extend_schema(tags=["members"], summary="Change a member's role (owners only)", request=MemberRoleSerializer,
                   responses=MemberSerializer)
    def patch(self, request, slug, pk):
        project, member = self.member(slug, pk)
        form = RoleForm(as_form_data(request.data if isinstance(request.data, dict) else {}))
        if not form.is_valid():
            raise form_errors(form)
        self.change(request, project, member, form.cleaned_data["role"])
        return Response(MemberSerializer(member).data)

    @extend_schema(tags=["members"], summary="Remove a member (owners only)", responses={204: None})
    def delete(self, request, slug, pk):
        project, member = self.member(slug, pk)
        self.change(request, project, member, None)
        return Response(status=status.HTTP_204_NO_CONTENT)
