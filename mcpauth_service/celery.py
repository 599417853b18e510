"""The Celery application: Redis as broker when REDIS_URL is set, eager in the embedded default."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpauth_service.settings")

app = Celery("mcpauth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
