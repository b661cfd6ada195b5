from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from . import views

urlpatterns = [
    path("api/v1/auth/login/", TokenObtainPairView.as_view()),
    path("api/v1/auth/refresh/", TokenRefreshView.as_view()),
    path("api/v1/auth/profile/", views.profile),
    path("api/v1/backup/restores/restore_from_file/", views.restore_from_file),
]
