from django.apps import AppConfig


class EmailUsersConfig(AppConfig):
    name = "emailusers"
