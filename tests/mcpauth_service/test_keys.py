"""Three keys, each with one job: SECRET_KEY is never the fallback of DIGEST_KEY or KEY_ENCRYPTION_KEY.

With DATABASE_URL set, DIGEST_KEY and KEY_ENCRYPTION_KEY must be given (mcpauth.E002/E003) and the
server refuses to start without them; the embedded default makes three different random keys in
var/, and a var/ from before keeps the value its secrets were digested and encrypted with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from mcpauth_service import checks

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("SECRET_KEY", "DIGEST_KEY", "KEY_ENCRYPTION_KEY")
PRINT_KEYS = "from django.conf import settings as s; print(s.SECRET_KEY); print(s.DIGEST_KEY); print(s.KEY_ENCRYPTION_KEY)"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {*KEYS, "DATABASE_URL", "REDIS_URL"}}
    return {**env, "DJANGO_SETTINGS_MODULE": "mcpauth_service.settings", **extra}


def settings_keys(var_dir: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {PRINT_KEYS}"], cwd=ROOT,
                          env=clean_env(MCPAUTH_VAR_DIR=str(var_dir)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("missing,code", [("DIGEST_KEY", "mcpauth.E002"), ("KEY_ENCRYPTION_KEY", "mcpauth.E003")])
def test_it_requires_each_key_once_a_database_url_is_set(missing, code):
    keys = {"DIGEST_KEY": "d" * 60, "KEY_ENCRYPTION_KEY": "k" * 60, missing: ""}
    with override_settings(DATABASE_URL="postgres://db/mcpauth", SECRET_KEY="s" * 60, **keys):
        errors = checks.check_separate_keys(None)
    assert [e.id for e in errors] == [code]
    assert errors[0].is_serious()
    assert "current SECRET_KEY value" in errors[0].hint  # the upgrade path, in the message itself


def test_it_accepts_explicit_keys_even_equal_to_the_secret_key():
    with override_settings(DATABASE_URL="postgres://db/mcpauth", SECRET_KEY="s" * 60, DIGEST_KEY="s" * 60,
                           KEY_ENCRYPTION_KEY="new" * 20 + ",old" * 20):
        assert checks.check_separate_keys(None) == []


def test_it_requires_nothing_in_the_embedded_default():
    with override_settings(DATABASE_URL="", DIGEST_KEY="", KEY_ENCRYPTION_KEY=""):
        assert checks.check_separate_keys(None) == []


def test_it_refuses_to_serve_without_the_keys(tmp_path):
    env = clean_env(DATABASE_URL="postgres://nobody@127.0.0.1:1/mcpauth_none", SECRET_KEY="s" * 60,
                    MCPAUTH_VAR_DIR=str(tmp_path / "var"))
    done = subprocess.run([sys.executable, "-m", "mcpauth_service.serve", "--port", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "mcpauth.E002" in done.stderr and "mcpauth.E003" in done.stderr


def test_the_embedded_default_keeps_three_different_random_keys(tmp_path):
    var = tmp_path / "var"
    first = settings_keys(var)
    assert len(set(first)) == 3 and all(len(k) >= 50 for k in first)
    assert settings_keys(var) == first  # kept, not made anew
    assert [(var / name).read_text().strip() for name in ("secret_key", "digest_key", "key_encryption_key")] == first
    assert all((var / name).stat().st_mode & 0o077 == 0 for name in ("secret_key", "digest_key", "key_encryption_key"))


def test_an_embedded_var_from_before_keeps_its_secret_key_for_digests_and_encryption(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "secret_key").write_text("legacy-" + "x" * 50)
    (var / "mcpauth.sqlite3").write_bytes(b"")  # a database made when both keys were SECRET_KEY
    assert settings_keys(var) == ["legacy-" + "x" * 50] * 3
