"""Websocket routes of the admin UI."""

from django.urls import path

from streams import consumers

websocket_urlpatterns = [
    path("ws/cluster/", consumers.ClusterConsumer.as_asgi()),
    path("ws/live/", consumers.LiveConsumer.as_asgi()),
    path("ws/scan/", consumers.ScanConsumer.as_asgi()),
    path("ws/topics/<str:name>/tail/", consumers.TailConsumer.as_asgi()),
]
