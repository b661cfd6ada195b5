"""The seed's endpoints: profile, and restore_from_file with with_reinit,
which commits the reinit (in blacklist mode, blacklist every outstanding
refresh token; delete every user but admin, admin's password to test123,
sequences reset) and then loads the backup with loaddata in a transaction of
its own: the window of the seed. No ATOMIC_REQUESTS, so each commits."""
import os
import tempfile
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.contrib.auth import authenticate, get_user_model, login
from django.views.decorators.csrf import csrf_exempt
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework_simplejwt.authentication import JWTAuthentication

# users.User or emailusers.User (REHEARSE_DJANGO_LOGIN), and how the reinit
# finds the admin it keeps: by its login.
User = get_user_model()
ADMIN = {"email": "admin@edms.local"} if settings.LOGIN == "email" else {"username": "admin"}


@api_view(["GET"])
def profile(request):
    u = request.user
    # A stateless TokenUser has no email; emailusers.User has no username.
    email = getattr(u, "email", "")
    return Response({"id": u.id, "username": getattr(u, "username", email), "email": email, "is_staff": u.is_staff})


@csrf_exempt
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def session_login(request):
    """A JSON login view: django.contrib.auth.login stores the session and
    sets its cookie (REHEARSE_DJANGO_AUTH=session, session_flush)."""
    field = User.USERNAME_FIELD  # username, or email with REHEARSE_DJANGO_LOGIN=email
    user = authenticate(request, password=request.data.get("password"), **{field: request.data.get(field)})
    if user is None:
        return Response({"non_field_errors": ["Unable to log in with provided credentials."]}, status=400)
    login(request._request, user)
    return Response({"id": user.id, "username": user.username})


def stateful_in_stateless_mode(view):
    """The staff check of the restore needs the user: in stateless mode the
    restore keeps JWTAuthentication; otherwise the defaults apply."""
    if settings.AUTH == "stateless":
        return authentication_classes([JWTAuthentication])(view)
    return view


@api_view(["POST"])
@stateful_in_stateless_mode
@parser_classes([MultiPartParser])
def restore_from_file(request):
    if not request.user.is_staff:
        return Response({"detail": "You do not have permission to perform this action."}, status=403)
    upload = request.FILES.get("backup_file")
    if upload is None:
        return Response({"detail": "backup_file is required"}, status=400)
    with_reinit = request.data.get("with_reinit") == "true"
    if with_reinit and request.data.get("reinit_confirm") != "RESTORE CLEAN":
        return Response({"detail": "reinit_confirm must be 'RESTORE CLEAN'"}, status=400)
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "wb") as tmp:
            for chunk in upload.chunks():
                tmp.write(chunk)
        if with_reinit:
            system_reinit()
        with transaction.atomic():
            call_command("loaddata", path, verbosity=0)
            reset_sequences()
    finally:
        os.unlink(path)
    return Response({"status": "success", "message": "Backup restored"})


def system_reinit():
    with transaction.atomic():
        if settings.BLACKLIST:
            blacklist_outstanding()
        if settings.FLUSH_SESSIONS:
            from django.contrib.sessions.models import Session

            Session.objects.all().delete()
        User.objects.exclude(**ADMIN).delete()
        admin = User.objects.filter(**ADMIN).first()
        if admin is None:
            admin = User(**{"email": "admin@edms.local", **ADMIN}, is_staff=True, is_superuser=True)
        admin.set_password("test123")
        admin.save()
        reset_sequences()


def blacklist_outstanding():
    # Imported here: the app's models exist only in blacklist mode.
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    # Hold new logins' tokens back until the reinit commits: a token minted
    # meanwhile would escape the blacklist, and its row would block deleting
    # its user (a login that read its user before the commit then fails).
    with connection.cursor() as cur:
        cur.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % OutstandingToken._meta.db_table)
    for token in OutstandingToken.objects.filter(blacklistedtoken__isnull=True):
        BlacklistedToken.objects.get_or_create(token=token)


def reset_sequences():
    out = StringIO()
    call_command("sqlsequencereset", settings.USERS_APP, "auth", stdout=out, no_color=True)
    with connection.cursor() as cur:
        for stmt in out.getvalue().split(";"):
            stmt = stmt.strip()
            if stmt and stmt.upper() not in ("BEGIN", "COMMIT"):
                cur.execute(stmt)
