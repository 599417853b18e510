"""The production settings, with `/bench/hello` routed (BENCH_HELLO): the ceiling every scenario is
compared against. Rate limits are off through the environment (`RATE_LIMITS=off`, set by bench/run.py):
every request comes from 127.0.0.1, and measuring 429s would measure nothing.
"""

from mcpauth_service.settings import *  # noqa: F403

BENCH_HELLO = True
