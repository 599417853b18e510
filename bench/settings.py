"""The production settings, with the two things a benchmark on loopback needs.

- `/bench/hello` is routed (BENCH_HELLO), the ceiling every scenario is compared against;
- open registration's rate limits are lifted: every request comes from 127.0.0.1, and measuring
  429s would measure nothing. The limiter itself still runs (its Redis counters are part of the cost).
"""

from mcpauth_service.settings import *  # noqa: F403

BENCH_HELLO = True
UNLIMITED = [(60, 10**9)]
RATE_LIMITS = {"register:ip": UNLIMITED, "register:project": UNLIMITED}
