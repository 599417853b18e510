"""The Celery application: Redis as broker when REDIS_URL is set, eager in the embedded default."""

import os

from celery import Celery

from infra.metrics import count_celery_tasks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpauth_service.settings")

app = Celery("mcpauth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
count_celery_tasks()  # task outcomes in the Prometheus metrics (infra/metrics.py)
