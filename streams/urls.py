"""URL routes of the admin UI."""

from django.urls import path

from streams import views

urlpatterns = [
    path("", views.overview, name="overview"),
]
