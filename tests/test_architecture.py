"""The house's shape, as tests (issue 16; docs/architecture.md).

- no import circle between production modules (every import counts, deferred ones too);
- the ground floor (`infra/`), the tenants (`projects/`) and second factors (`mfa/`) import nothing
  of `oauth/` or `dashboard/`, and `infra/` nothing of `projects/` either;
- no production module imports a private name (`_name`) of Django, the toolkit, oauthlib or redis;
- adding a grant is one module plus one entry in `oauth.grants.GRANTS`: discovery, client
  metadata validation and the token endpoint all follow the list.
"""

import ast
from pathlib import Path

import pytest

from oauth import grants
from oauth.clients import metadata as client_metadata
from oauth.endpoints.token import TokenView
from tests import architecture_grant
from tests.token_support import basic, post_form, token_url

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("infra", "mcpauth_service", "projects", "activity", "oauth", "identity", "mfa", "dashboard", "mcpauth_rs",
              "webhooks")
LIBRARIES = ("django", "oauth2_provider", "oauthlib", "redis", "django_otp", "webauthn")


# -- the import graph -------------------------------------------------------------------------------

def production_modules() -> dict[str, Path]:
    found = {}
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = production_modules()


def imported(name: str, path: Path) -> list[tuple[str, ast.AST]]:
    """(absolute module name, node) for every import in the module, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from package import module` imports the module; `from module import name`, the module.
            found += [(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base, node)
                      for alias in node.names]
    return found


def own_edges(name: str, path: Path) -> set[str]:
    """The production modules `name` imports (importing a submodule runs its packages too, except
    `name`'s own packages, which are already running)."""
    edges = set()
    for target, _ in imported(name, path):
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            # A module's own packages ran before it did: importing a sibling adds no edge to them.
            if prefix in MODULES and prefix != name and not name.startswith(prefix + "."):
                edges.add(prefix)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_it_finds_the_production_packages():
    assert {"oauth.models", "oauth.grants", "oauth.server", "infra.rows", "projects.models"} <= set(MODULES)


def test_it_has_no_import_circle():
    graph = {name: own_edges(name, path) for name, path in MODULES.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("lower,forbidden", [
    ("projects", ("oauth", "dashboard", "activity", "webhooks", "identity")),
    ("activity", ("oauth", "dashboard")),
    ("infra", ("oauth", "dashboard", "projects", "activity", "webhooks", "identity")),
    ("webhooks", ("oauth", "dashboard")),  # oauth and dashboard call webhooks.emit, never the reverse
    ("mfa", ("oauth", "dashboard")),
    ("identity", ("oauth", "dashboard")),  # beside oauth/: oauth.endpoints.signin and .upstream call it
])
def test_lower_floors_import_nothing_of_upper_ones(lower, forbidden):
    wrong = sorted(f"{name} imports {target}" for name, path in MODULES.items() if name.split(".")[0] == lower
                   for target, _ in imported(name, path) if target.split(".")[0] in forbidden)
    assert wrong == []


def private_imports(modules: dict[str, Path]) -> list[str]:
    wrong = []
    for name, path in modules.items():
        for target, node in imported(name, path):
            if target.split(".")[0] not in LIBRARIES:
                continue
            names = [alias.name for alias in node.names] if isinstance(node, ast.ImportFrom) else []
            private = [part for part in target.split(".") + names if part.startswith("_") and part != "__future__"]
            if private:
                wrong.append(f"{name}: {target} {', '.join(private)}")
    return sorted(set(wrong))


def test_no_production_module_imports_a_private_name_of_a_library():
    assert private_imports(MODULES) == []


def test_the_private_import_finder_sees_one(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text("from oauth2_provider.cimd import _fetch_slot\nfrom django.db import models\n"
                      "import redis._parsers\n")
    assert private_imports({"sample": module}) == ["sample: oauth2_provider.cimd _fetch_slot",
                                                  "sample: redis._parsers _parsers"]


# -- one list of grants --------------------------------------------------------------------------------

ECHO = architecture_grant.GRANT_TYPE


@pytest.fixture
def server_rebuilt_per_request(settings):
    """The toolkit keeps one server per view; its ALWAYS_RELOAD_OAUTHLIB_CORE setting builds one per request."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ALWAYS_RELOAD_OAUTHLIB_CORE": True}


@pytest.fixture
def echo_grant(server_rebuilt_per_request):
    """The test grant's one line in GRANTS, open to clients registered with a project secret."""
    spec = grants.Grant(ECHO, "tests.architecture_grant.factory", "Echo (tests only)", paths=grants.TRUSTED_PATHS)
    grants.GRANTS.append(spec)
    yield spec
    grants.GRANTS.remove(spec)
    TokenView.get_oauthlib_core()  # the view's kept server, rebuilt without it (the setting is still on)


def echo(client, http, project, secret=None):
    return post_form(http, token_url(project), {"grant_type": ECHO}, HTTP_AUTHORIZATION=basic(client, secret))


@pytest.mark.django_db
def test_discovery_lists_a_grant_added_to_the_registry(client, project_a, echo_grant):
    metadata = client.get("/p/alpha/.well-known/oauth-authorization-server").json()
    # every grant the project has on (jwt-bearer only once it trusts an enterprise issuer)
    assert metadata["grant_types_supported"] == [grant.grant_type for grant in grants.GRANTS
                                                 if grant.enabled(project_a)]
    assert metadata["grant_types_supported"][-1] == ECHO


@pytest.mark.django_db
def test_client_metadata_validation_follows_the_registry(project_a, echo_grant):
    requested = {"client_name": "Echo", "grant_types": [ECHO], "token_endpoint_auth_method": "client_secret_basic"}
    kept = client_metadata.validate(requested, project_a, "secret")
    assert kept.metadata["grant_types"] == [ECHO] and kept.narrowed == {}
    requested = {"client_name": "Echo", "redirect_uris": ["https://app.example/cb"],
                 "grant_types": ["authorization_code", ECHO], "token_endpoint_auth_method": "none"}
    narrowed = client_metadata.validate(requested, project_a, "open")
    assert narrowed.metadata["grant_types"] == ["authorization_code"]
    assert narrowed.narrowed["grant_types"] == [{"value": ECHO, "reason": "needs registration with a project secret"}]


@pytest.mark.django_db
def test_client_metadata_drops_a_grant_not_in_the_registry(project_a):
    requested = {"client_name": "Echo", "grant_types": ["client_credentials", ECHO],
                 "token_endpoint_auth_method": "client_secret_basic"}
    cleaned = client_metadata.validate(requested, project_a, "secret")
    assert cleaned.metadata["grant_types"] == ["client_credentials"]
    assert cleaned.narrowed["grant_types"] == [{"value": ECHO, "reason": "not supported by this server"}]


@pytest.mark.django_db
def test_the_token_endpoint_runs_a_grant_added_to_the_registry(client, confidential_client_a, echo_grant):
    response = echo(confidential_client_a, client, confidential_client_a.project)
    assert response.status_code == 200
    assert response.json() == {"grant_type": ECHO, "client_id": confidential_client_a.client_id}
    refused = echo(confidential_client_a, client, confidential_client_a.project, secret="mcpcs_wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


@pytest.mark.django_db
def test_the_token_endpoint_refuses_a_grant_not_in_the_registry(client, confidential_client_a,
                                                                 server_rebuilt_per_request):
    response = echo(confidential_client_a, client, confidential_client_a.project)
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
