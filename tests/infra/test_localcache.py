"""The in-process tier (infra.localcache): `get_or_load` reads once and serves from memory until
any process moves the shared generation on; a full tier evicts its least recently used entry rather
than forgetting everything. Runs on the embedded cache table and on Redis alike."""

from infra.localcache import MISS, LocalCache
from tests.localcache_support import another_worker_holding


class Loader:
    """A stand-in for a database read: counts its calls, returns the current value."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_it_loads_once_and_then_serves_from_memory(db):
    memo, load = LocalCache(ttl=60), Loader("row")

    first = memo.get_or_load("k", load)
    second = memo.get_or_load("k", load)

    assert (first, second, load.calls) == ("row", "row", 1)


def test_it_loads_again_once_another_process_forgets_anything(db):
    memo, load = LocalCache(ttl=60), Loader("old")
    memo.get_or_load("k", load)
    load.value = "new"

    another_worker_holding("elsewhere").forget("elsewhere")  # a change made in another worker

    assert memo.get_or_load("k", load) == "new"
    assert load.calls == 2


def test_it_does_not_keep_what_keep_refuses(db):
    memo, load = LocalCache(ttl=60), Loader(None)

    assert memo.get_or_load("unknown", load, keep=lambda value: value is not None) is None
    assert memo.get("unknown") is MISS
    memo.get_or_load("unknown", load, keep=lambda value: value is not None)
    assert load.calls == 2


def test_it_evicts_the_least_recently_used_entry_when_full(db):
    memo = LocalCache(ttl=60, max_entries=2)
    memo.get_or_load("a", Loader("A"))
    memo.get_or_load("b", Loader("B"))
    assert memo.get("a") == "A"  # "a" is now the more recently used

    memo.get_or_load("c", Loader("C"))

    assert (memo.get("a"), memo.get("b"), memo.get("c")) == ("A", MISS, "C")


def test_it_keeps_nothing_with_no_lifetime(db):
    memo, load = LocalCache(ttl=0), Loader("row")

    memo.get_or_load("k", load)
    memo.get_or_load("k", load)

    assert load.calls == 2
