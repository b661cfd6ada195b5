from django.conf import settings
from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from . import views

urlpatterns = [
    path("api/v1/auth/login/", TokenObtainPairView.as_view()),
    path("api/v1/auth/refresh/", TokenRefreshView.as_view()),
    path("api/v1/auth/profile/", views.profile),
    path("api/v1/backup/restores/restore_from_file/", views.restore_from_file),
]
if settings.SESSIONS:
    from django.contrib.auth.views import LoginView

    urlpatterns.append(path("api/v1/auth/session/", views.session_login))
    urlpatterns.append(path("accounts/login/", LoginView.as_view(template_name="login.html")))
if settings.DRF_TOKENS:
    from rest_framework.authtoken.views import obtain_auth_token

    urlpatterns.append(path("api/v1/auth/token/", obtain_auth_token))
