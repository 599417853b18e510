import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpauth_service.settings")
application = get_wsgi_application()

# Refuse to serve a deployment that fails a system check (weak SECRET_KEY with DEBUG off, ...).
from django.core import checks  # noqa: E402

_errors = [m for m in checks.run_checks() if m.is_serious()]
if _errors:
    raise SystemExit("refusing to start:\n" + "\n".join(str(m) for m in _errors))
