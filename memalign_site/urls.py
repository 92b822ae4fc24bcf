from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from memalign_site import health

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health/", health.health, name="health"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("memory.urls")),
    path("", include("judging.urls")),
    path("", include("evaluation.urls")),
    path("", include("reviews.urls")),
]
