"""URL routes of the admin UI and its JSON API."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from streams.views import cluster, groups, messages, topics

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="streams/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", cluster.overview, name="overview"),
    path("events/", cluster.events, name="events"),
    path("account/", cluster.account, name="account"),
    path("topics/", topics.topic_list, name="topics"),
    path("new-topic/", topics.topic_create, name="topic_create"),
    path("topics/<str:name>/", topics.topic, name="topic"),
    path("topics/<str:name>/configs/", topics.topic_configs, name="topic_configs"),
    path("topics/<str:name>/partitions/", topics.topic_partitions, name="topic_partitions"),
    path("topics/<str:name>/delete/", topics.topic_delete, name="topic_delete"),
    path("topics/<str:name>/messages/", messages.messages, name="messages"),
    path("topics/<str:name>/messages/export/", messages.export, name="messages_export"),
    path(
        "topics/<str:name>/messages/<int:partition>/<int:offset>/",
        messages.message,
        name="message",
    ),
    path("topics/<str:name>/tail/", messages.tail, name="tail"),
    path("topics/<str:name>/produce/", messages.produce, name="produce"),
    path("groups/", groups.group_list, name="groups"),
    path("groups/<path:group_id>/reset/", groups.group_reset, name="group_reset"),
    path("groups/<path:group_id>/delete/", groups.group_delete, name="group_delete"),
    path("groups/<path:group_id>/", groups.group, name="group"),
    path("api/", include("streams.api.urls")),
]
