"""docs/clients.md says what the compatibility matrix replays (it is rendered from the same table)."""

from tests.e2e.clients.matrix import CLIENTS
from tests.e2e.clients.render import PAGE, render


def test_it_keeps_docs_clients_md_rendered_from_the_matrix():
    assert PAGE.read_text() == render(), "re-render: python -m tests.e2e.clients.render > docs/clients.md"


def test_every_client_cites_a_source_and_says_what_it_sends():
    for entry in CLIENTS:
        assert entry.sources and all(url.startswith("https://") for url in entry.sources), entry.name
        assert entry.way in ("cimd", "dcr") and entry.sends.get("redirect_uris"), entry.name
        if entry.way == "cimd":
            assert entry.sends["client_id"] == entry.url, entry.name


def test_each_client_has_its_own_case():
    ids = [entry.id for entry in CLIENTS]
    assert len(ids) == len(set(ids))
