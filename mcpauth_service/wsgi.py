import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpauth_service.settings")
django_application = get_wsgi_application()

from infra.documents import DocumentCache  # noqa: E402  (after Django is set up)
from infra.whole import WholeAnswers  # noqa: E402

# Discovery and JWKS answered again from their finished bytes while nothing changed (infra/documents.py);
# every other answer handed to the server whole, in one call (infra/whole.py).
application = DocumentCache(WholeAnswers(django_application))

# Refuse to serve a deployment that fails a system check (weak SECRET_KEY with DEBUG off, ...).
from django.core import checks  # noqa: E402

_messages = checks.run_checks()
_errors = [m for m in _messages if m.is_serious()]
for _warning in (m for m in _messages if not m.is_serious() and not m.is_silenced()):
    logging.getLogger("mcpauth.checks").warning("%s", _warning)  # e.g. RATE_LIMITS=off, at every start
if _errors:
    raise SystemExit("refusing to start:\n" + "\n".join(str(m) for m in _errors))

# The embedded default has no Celery worker: this process sends its webhooks from a thread.
from webhooks import dispatcher  # noqa: E402

dispatcher.start()
