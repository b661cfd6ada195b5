#!/usr/bin/env python3
"""A minimal Django REST Framework + simplejwt app with the seed's
restore_from_file(with_reinit) endpoint, for rehearsing a real Django system.
Run by cmd/rehearse/django_test.go; settings come from the environment."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edmsdemo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
