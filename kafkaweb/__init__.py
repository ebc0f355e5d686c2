"""Kafkaweb: a Kafka-compatible streaming platform with a live admin application."""

from kafkaweb.celery import app as celery_app

__all__ = ("celery_app",)
