"""The scopes a client may hold (RFC 6749 §3.3): its registered `scope` within the project's catalog."""

from oauth.models import Application


def allowed_scopes(client: Application, project) -> list[str]:
    """The scopes `client` may hold: its registered `scope` within the catalog, else the whole catalog."""
    catalog = project.scope_names
    registered = client.metadata.get("scope") if isinstance(client.metadata, dict) else None
    if isinstance(registered, str) and registered.strip():
        return [s for s in registered.split() if s in catalog]
    return catalog
