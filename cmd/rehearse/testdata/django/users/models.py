from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The seed's custom user model: table users_user."""
