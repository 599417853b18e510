"""Project.open_client_count: the open-registered clients of each project, counted once here."""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_open_clients(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    Application = apps.get_model("oauth", "Application")
    counts = (Application.objects.filter(project=OuterRef("pk"), registration_path="open")
              .order_by().values("project").annotate(n=Count("pk")).values("n"))
    # A worker still running the previous code registers without counting until it is replaced;
    # the reaper's next recount (Project.recount_open_clients) catches those up.
    Project.objects.update(open_client_count=Coalesce(Subquery(counts), 0))


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0001_initial'),
        ('oauth', '0005_registration_token'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='open_client_count',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_open_clients, migrations.RunPython.noop),
    ]
