"""A Node client we did not write, run as a process that talks JSON lines: it prints
`{"authorize": url}` for each sign-in it needs and `{"done": ...}` at the end; anything else is a failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from .conftest import REDIRECT_URI
from .user_agent import EndUser

NODE_SECONDS = 180


def node_script(directory: Path, package: str, script: str, *args: str) -> subprocess.Popen:
    """`node DIRECTORY/SCRIPT ARGS` with pipes; fails the test when Node or `package` is not installed."""
    node = shutil.which("node")
    if node is None or not (directory / "node_modules" / package).is_dir():
        pytest.fail(f"Node 20 and `npm ci --prefix tests/e2e/{directory.name}` are needed "
                    "(make test and .ci/run do both)")
    return subprocess.Popen([node, str(directory / script), *args], cwd=directory, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def converse(process: subprocess.Popen, user: EndUser, name: str) -> dict:
    """Answer each sign-in the client asks for with the end user's redirect query; its `done` answer."""
    watchdog = threading.Timer(NODE_SECONDS, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            message = json.loads(line)
            if "authorize" in message:
                process.stdin.write(json.dumps(user.authorize(message["authorize"], REDIRECT_URI)) + "\n")
                process.stdin.flush()
            elif "done" in message:
                return message["done"]
            else:
                pytest.fail(f"{name} failed: {message}\n{process.stderr.read()}")
        pytest.fail(f"{name} ended without an answer:\n{process.stderr.read()}")
    finally:
        watchdog.cancel()
        process.stdin.close()
        process.wait(timeout=30)
