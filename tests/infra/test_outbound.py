"""The outbound wrapper's address check: globally routable unicast only, IPv4 carried in IPv6 included."""

import pytest

from infra.outbound import address_allowed


@pytest.mark.parametrize("ip, allowed", [
    ("8.8.8.8", True),
    ("2001:4860:4860::8888", True),
    ("10.0.0.1", False),
    ("127.0.0.1", False),
    ("::1", False),
    ("169.254.169.254", False),  # cloud metadata
    ("224.0.0.1", False),  # multicast: is_global alone would let it through
    ("::ffff:169.254.169.254", False),  # IPv4-mapped
    ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ("fe80::1%eth0", False),
    ("not-an-address", False),
])
def test_it_allows_only_globally_routable_unicast(settings, ip, allowed):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    assert address_allowed(ip) is allowed
