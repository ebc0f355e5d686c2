"""URL routes: the admin UI, its JSON API and Django's admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("", include("streams.urls")),
]
