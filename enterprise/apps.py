from django.apps import AppConfig


class EnterpriseConfig(AppConfig):
    name = "enterprise"
    default_auto_field = "django.db.models.BigAutoField"
