# The per-project DPoP policy (RFC 9449): off, allowed or required for public clients; server nonces.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0005_openid_connect'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='dpop',
            field=models.CharField(choices=[('off', 'Off: proofs ignored, bearer tokens only'), ('allowed', 'Allowed: a client that sends a proof gets a DPoP-bound token'), ('required', 'Required for public clients')], default='off', max_length=16),
        ),
        migrations.AddField(
            model_name='project',
            name='dpop_nonce',
            field=models.BooleanField(default=False),
        ),
    ]
