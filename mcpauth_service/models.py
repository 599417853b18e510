"""The embedded default's cache table (infra.cache.DatabaseCache), made by a migration.

The columns are the ones Django's `createcachetable` makes, so Django's database cache reads it;
being a model, it exists after `migrate` on every database (a fresh clone's `make run`, the test
database, a deployment that later runs without Redis), with no extra command to remember.
"""

from django.db import models


class CacheEntry(models.Model):
    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "mcpauth_cache"
