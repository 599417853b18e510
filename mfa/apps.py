from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "mfa"
    verbose_name = "Second factors"
    default_auto_field = "django.db.models.BigAutoField"
