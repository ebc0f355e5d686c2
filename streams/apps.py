"""The streams app: cluster metadata, the admin UI, its API and live events."""

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    verbose_name = "Kafkaweb"
    default_auto_field = "django.db.models.BigAutoField"
