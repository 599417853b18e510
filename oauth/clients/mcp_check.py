"""Check an MCP server the way a careful MCP client does (RFC 9728, RFC 8414, MCP authorization).

Given the URL clients use for an MCP server: request it without a token and read
`WWW-Authenticate` (`resource_metadata`) from the 401; fetch the protected-resource metadata from
that URL and from the well-known locations (path-inserted, then root); check that
`authorization_servers` names this project's issuer exactly, that `resource` is that URL and one
of the project's resources, that `scopes_supported` lines up with the project's catalog, and that
the issuer's metadata answers at every location clients try (RFC 8414 path-inserted, OpenID
Connect path-inserted, issuer-suffixed). Each finding has a level and, unless it is `ok`, a fix.

Every fetch goes through `infra.outbound` (SSRF-safe, no redirects, bounded). Findings never
carry a resolved address or a fetched body: only the URLs the operator gave or the documents
named, and HTTP status codes.
"""

import json
import re
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from infra import outbound
from projects.models import Project

ERROR, WARNING, OK = "error", "warning", "ok"
MAX_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5.0
SCHEMES = ("https", "http")
RESOURCE_METADATA = re.compile(r'resource_metadata\s*=\s*"([^"]*)"', re.IGNORECASE)


@dataclass
class Finding:
    level: str
    message: str
    fix: str = ""


@dataclass
class Report:
    url: str
    findings: list[Finding] = field(default_factory=list)
    project: Project | None = None

    @property
    def ok(self) -> bool:
        return not any(f.level == ERROR for f in self.findings)

    def add(self, level: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, message, fix))

    def as_dict(self) -> dict:
        """The `checkmcp --json` shape (API.md): {"ok", "findings": [{"level", "message", "fix"}]}."""
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}


@dataclass
class Fetched:
    url: str
    status: int = 0
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    failure: str = ""  # why nothing came back, in words safe to show (no addresses)

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status else self.failure

    def json(self) -> dict | None:
        if self.status != 200:
            return None
        try:
            document = json.loads(self.body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None


def fetch(url: str, headers: dict | None = None) -> Fetched:
    try:
        response = outbound.get(url, max_bytes=MAX_BYTES, timeout=TIMEOUT_SECONDS, headers=headers, schemes=SCHEMES)
    except outbound.OutboundError as exc:
        return Fetched(url, failure=_failure_words(str(exc)))
    return Fetched(url, response.status, {k.lower(): v for k, v in response.headers.items()}, response.body)


def _failure_words(reason: str) -> str:
    """The outbound wrapper's reason, reduced to words that name no address (its message may)."""
    if "non-public address" in reason:
        return "refused: the host is not a public address"
    if reason.startswith("timed out"):
        return "timed out"
    if reason.startswith("could not resolve"):
        return "the host name does not resolve"
    if reason.startswith("response larger"):
        return f"the answer is larger than {MAX_BYTES // 1024} KB"
    if reason.startswith(("URL scheme", "malformed", "URL carries")):
        return "not an http(s) URL this check can fetch"
    return "could not connect"


# -- the steps ------------------------------------------------------------------------------------

def check(url: str, project: Project | None = None) -> Report:
    """Run every step against the MCP server at `url`; `project` None: the one the server names."""
    report = Report(url=url, project=project)
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        report.add(ERROR, f"{url!r} is not an http(s) URL.", "Give the MCP server's URL, as clients use it.")
        return report
    header_url = check_challenge(report)
    document = find_resource_metadata(report, header_url)
    if document is None:
        return report
    check_resource(report, document)
    issuer = check_authorization_servers(report, document)
    if report.project is not None:
        check_resource_in_project(report, document)
        check_scopes(report, document)
    if issuer or report.project is not None:  # the project's issuer is checked even when misnamed
        check_issuer_metadata(report, issuer or report.project.issuer)
    return report


def check_challenge(report: Report) -> str:
    """MCP authorization: a request without a token gets 401 with `resource_metadata` (RFC 9728 §5.1)."""
    answer = fetch(report.url, {"Accept": "application/json, text/event-stream"})
    if not answer.status:
        report.add(ERROR, f"The MCP server could not be reached: {answer.failure}.",
                   "Check the URL, and that the server is up and reachable from this issuer.")
        return ""
    if 300 <= answer.status < 400:
        report.add(ERROR, f"A request without a token was redirected (HTTP {answer.status}), not answered 401.",
                   "Give clients the URL the server answers at (check the trailing slash): the MCP server "
                   "URL and the metadata's resource must be that URL.")
        return ""
    if answer.status != 401:
        report.add(ERROR, f"A request without a token got HTTP {answer.status}, not 401.",
                   "Answer every request without a valid access token with 401 and "
                   'WWW-Authenticate: Bearer resource_metadata="<metadata URL>" (MCP authorization, RFC 9728 §5.1).')
        return ""
    match = RESOURCE_METADATA.search(answer.headers.get("www-authenticate", ""))
    if not match:
        report.add(WARNING, "The 401 has no resource_metadata in WWW-Authenticate; clients must guess the "
                            "well-known location.",
                   'Add resource_metadata="<protected-resource metadata URL>" to the WWW-Authenticate header.')
        return ""
    report.add(OK, f"A request without a token gets 401 naming resource_metadata {match.group(1)}.")
    return match.group(1)


def well_known_locations(url: str) -> list[str]:
    """RFC 9728 §3.1: the path-inserted location first, then the origin's root."""
    parts = urlsplit(url)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    candidates = [f"{origin}/.well-known/oauth-protected-resource{path}", f"{origin}/.well-known/oauth-protected-resource"]
    return list(dict.fromkeys(candidates))


def find_resource_metadata(report: Report, header_url: str) -> dict | None:
    """The document clients use: the header's, else the first well-known location that answers."""
    found: dict | None = None
    if header_url:
        answer = fetch(header_url)
        found = answer.json()
        if found is None:
            report.add(ERROR, f"The resource_metadata URL {header_url} answered {answer.describe()}, not a JSON "
                              "document.", "Serve the protected-resource metadata (RFC 9728) at that URL.")
    path_inserted, *root = well_known_locations(report.url)
    for location in [path_inserted, *root]:
        if location == header_url:
            continue
        answer = fetch(location)
        document = answer.json()
        if document is not None:
            report.add(OK, f"Protected-resource metadata is served at {location}.")
            found = found or document
        elif location == path_inserted:
            report.add(WARNING, f"No protected-resource metadata at {location} ({answer.describe()}).",
                       "Serve it there too: clients that miss the WWW-Authenticate header look there first "
                       "(RFC 9728 §3.1).")
    if found is None:
        report.add(ERROR, "No protected-resource metadata (RFC 9728) was found.",
                   f"Serve it at {path_inserted} and name it in WWW-Authenticate on 401.")
    return found


def check_resource(report: Report, document: dict) -> None:
    """RFC 9728 §3.3: `resource` must be identical to the URL the client used."""
    resource = document.get("resource")
    if resource == report.url:
        report.add(OK, f"resource is {resource}, the URL clients use.")
        return
    report.add(ERROR, f"resource is {resource!r}, not the URL clients use ({report.url}); clients refuse the "
                      "metadata (RFC 9728 §3.3).",
               f'Set "resource" to exactly "{report.url}" (same scheme, host, port and path, no trailing slash).')


def project_for_issuer(issuer: str) -> Project | None:
    """The project whose issuer is exactly `issuer`: `{PUBLIC_URL}/p/{slug}` or `https://{custom domain}`."""
    prefix = f"{settings.PUBLIC_URL}/p/"
    if issuer.startswith(prefix):
        slug = issuer[len(prefix):]
        return Project.objects.filter(slug=slug).first() if slug and "/" not in slug else None
    parts = urlsplit(issuer)
    if parts.scheme == "https" and parts.hostname and not parts.path and issuer == f"https://{parts.netloc}":
        return Project.objects.filter(custom_domain=parts.hostname).first()
    return None


def issuers_of(project: Project) -> list[str]:
    return [project.issuer] + ([f"https://{project.custom_domain}"] if project.custom_domain else [])


def check_authorization_servers(report: Report, document: dict) -> str:
    """`authorization_servers` must name the issuer character for character (RFC 8414 §3.3)."""
    named = document.get("authorization_servers")
    if not isinstance(named, list) or not named or not all(isinstance(i, str) for i in named):
        report.add(ERROR, "authorization_servers is missing or not a list of issuer URLs.",
                   'Add "authorization_servers": ["<this project\'s issuer>"].')
        return ""
    if report.project is None:
        report.project = next((p for p in map(project_for_issuer, named) if p is not None), None)
    if report.project is not None:
        exact = [i for i in named if i in issuers_of(report.project)]
        if exact:
            report.add(OK, f"authorization_servers names this project's issuer {exact[0]}.")
            return exact[0]
    near = [(i, p) for i in named if (p := project_for_issuer(i.rstrip("/")))
            and (report.project is None or p.pk == report.project.pk)]
    if near:
        wrong, report.project = near[0][0], near[0][1]
        report.add(ERROR, f"authorization_servers names {wrong!r}, but the issuer is {report.project.issuer!r}: "
                          "clients compare issuers character for character.",
                   f'Use exactly "{report.project.issuer}" in authorization_servers (no trailing slash).')
        return ""
    if report.project is None:
        report.add(ERROR, f"authorization_servers ({', '.join(named)}) names no project of this server.",
                   "Put your project's issuer (its dashboard page shows it) in authorization_servers.")
    else:
        report.add(ERROR, f"authorization_servers ({', '.join(named)}) does not name project "
                          f"{report.project.slug}'s issuer {report.project.issuer}.",
                   f'Put exactly "{report.project.issuer}" in authorization_servers.')
    return ""


def check_resource_in_project(report: Report, document: dict) -> None:
    """RFC 8707: the project issues tokens only for its own resources (else `invalid_target`)."""
    resource = document.get("resource")
    project = report.project
    if resource in project.resources:
        report.add(OK, f"{resource} is one of project {project.slug}'s resources.")
    elif report.url in project.resources:
        report.add(OK, f"{report.url} is one of project {project.slug}'s resources.")
    else:
        report.add(ERROR, f"{resource or report.url} is not one of project {project.slug}'s resources: clients "
                          "asking for it get invalid_target.",
                   f"Add {report.url} to the project's resources (dashboard, Settings), or fix the server's resource.")


def check_scopes(report: Report, document: dict) -> None:
    scopes = document.get("scopes_supported")
    if scopes is None:
        report.add(WARNING, "The metadata has no scopes_supported; clients then ask for the issuer's scopes.",
                   "List the scopes the server needs in scopes_supported.")
        return
    catalog = report.project.scope_names
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        report.add(ERROR, "scopes_supported is not a list of scope names.", "Make it a JSON array of strings.")
        return
    unknown = [s for s in scopes if s not in catalog]
    if unknown:
        report.add(ERROR, f"scopes_supported has scopes project {report.project.slug} does not offer: "
                          f"{', '.join(unknown)}; clients asking for them get invalid_scope.",
                   f"Add them to the project's scopes, or use the project's: {', '.join(catalog)}.")
    else:
        report.add(OK, f"scopes_supported ({' '.join(scopes)}) are all in the project's catalog.")


def issuer_metadata_locations(issuer: str) -> list[str]:
    """Where MCP clients look for the issuer's metadata (MCP authorization, 2025-11-25 §4.3)."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    return list(dict.fromkeys([
        f"{origin}/.well-known/oauth-authorization-server{path}",  # RFC 8414 §3.1, path-inserted
        f"{origin}/.well-known/openid-configuration{path}",  # OIDC, path-inserted
        f"{issuer}/.well-known/openid-configuration",  # OIDC Discovery §4, issuer-suffixed
    ]))


def check_issuer_metadata(report: Report, issuer: str) -> None:
    for location in issuer_metadata_locations(issuer):
        answer = fetch(location)
        document = answer.json()
        if document is None:
            report.add(ERROR, f"The issuer's metadata is not reachable at {location} ({answer.describe()}).",
                       "Route every /.well-known/ path of the issuer's origin to mcpauth (proxy rules), "
                       "and check PUBLIC_URL.")
        elif document.get("issuer") != issuer:
            report.add(ERROR, f"The metadata at {location} says issuer {document.get('issuer')!r}, not {issuer!r}.",
                       "Set PUBLIC_URL to the origin clients use, without a trailing slash.")
        else:
            report.add(OK, f"The issuer's metadata answers at {location}.")
