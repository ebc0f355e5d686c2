"""Routes of the JSON API (see streams/api/openapi.py)."""

from django.urls import path

from streams.api import views

urlpatterns = [
    path("", views.docs, name="api_docs"),
    path("openapi.json", views.schema, name="api_schema"),
    path("cluster", views.Cluster.as_view(), name="api_cluster"),
    path("events", views.Events.as_view(), name="api_events"),
    path("topics", views.Topics.as_view(), name="api_topics"),
    path("topics/<str:name>", views.Topic.as_view(), name="api_topic"),
    path("topics/<str:name>/configs", views.TopicConfigs.as_view(), name="api_topic_configs"),
    path(
        "topics/<str:name>/partitions", views.TopicPartitions.as_view(), name="api_topic_partitions"
    ),
    path("topics/<str:name>/messages", views.Messages.as_view(), name="api_messages"),
    path(
        "topics/<str:name>/partitions/<int:partition>/messages/<int:offset>",
        views.Message.as_view(),
        name="api_message",
    ),
    path("groups", views.Groups.as_view(), name="api_groups"),
    path(
        "groups/<path:group_id>/reset-offsets", views.GroupReset.as_view(), name="api_group_reset"
    ),
    path("groups/<path:group_id>", views.Group.as_view(), name="api_group"),
]
