# RFC 9449 §5: the DPoP key thumbprint a public client's refresh token is bound to ("" when unbound).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('oauth', '0009_openid_connect'),
    ]

    operations = [
        migrations.AddField(
            model_name='refreshtoken',
            name='dpop_jkt',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
    ]
