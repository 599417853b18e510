from django.urls import include, path

from . import audit, clients, enterprise, identity, mcpcheck, members, people, policy, project_secrets, views

app_name = "dashboard"

P = "projects/<slug:slug>"
project_patterns = [
    path(P, views.project_detail, name="project"),
    path(P + "/check-mcp", mcpcheck.check_mcp, name="check_mcp"),
    path(P + "/clients", clients.client_list, name="clients"),
    path(P + "/clients/new", clients.client_new, name="client_new"),
    path(P + "/clients/registrations", clients.client_registrations, name="client_registrations"),
    path(P + "/clients/<int:pk>", clients.client_detail, name="client"),
    path(P + "/clients/<int:pk>/revoke-tokens", clients.client_revoke_tokens, name="client_revoke_tokens"),
    path(P + "/clients/<int:pk>/disable", clients.client_disable, name="client_disable"),
    path(P + "/clients/<int:pk>/delete", clients.client_delete, name="client_delete"),
    path(P + "/users", people.end_user_list, name="end_users"),
    path(P + "/users/<int:pk>/revoke", people.end_user_revoke, name="end_user_revoke"),
    path(P + "/secrets", project_secrets.secret_list, name="secrets"),
    path(P + "/secrets/<int:pk>/revoke", project_secrets.secret_revoke, name="secret_revoke"),
    path(P + "/enterprise", enterprise.issuer_list, name="enterprise"),
    path(P + "/enterprise/<int:pk>/remove", enterprise.issuer_remove, name="enterprise_remove"),
    path(P + "/identity-providers", identity.provider_list, name="identity_providers"),
    path(P + "/identity-providers/<int:pk>", identity.provider_edit, name="identity_provider_edit"),
    path(P + "/identity-providers/<int:pk>/toggle", identity.provider_toggle, name="identity_provider_toggle"),
    path(P + "/identity-providers/<int:pk>/delete", identity.provider_delete, name="identity_provider_delete"),
    path(P + "/identity-providers/<int:pk>/test", identity.provider_test, name="identity_provider_test"),
    path(P + "/identity-providers/<int:pk>/tested", identity.provider_tested, name="identity_provider_tested"),
    path(P + "/users/<int:pk>/identities/<int:identity_pk>/unlink", identity.identity_unlink,
         name="end_user_identity_unlink"),
    path(P + "/settings", policy.project_settings, name="settings"),
    path(P + "/settings/rotate-key", policy.rotate_key, name="rotate_key"),
    path(P + "/members", members.member_list, name="members"),
    path(P + "/members/<int:pk>", members.member_change, name="member_change"),
    path(P + "/audit", audit.audit_log, name="audit"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login", views.login_view, name="login"),
    path("signup", views.signup_view, name="signup"),
    path("logout", views.logout_view, name="logout"),
    path("account", views.account, name="account"),
    path("account/tokens/<int:pk>/revoke", views.token_revoke, name="token_revoke"),
    path("projects/new", views.project_new, name="project_new"),
    *project_patterns,
    path("", include("dashboard.api_urls")),
]
