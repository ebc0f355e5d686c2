"""Websocket routes of the admin UI."""

from django.urls import path

from streams import consumers

websocket_urlpatterns = [
    path("ws/cluster/", consumers.ClusterConsumer.as_asgi()),
]
