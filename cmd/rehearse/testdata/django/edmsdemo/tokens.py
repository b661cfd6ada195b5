"""Blacklist mode: stock token_blacklist checks refresh tokens only, so an
access token outlives its blacklisted refresh token until it expires. Here an
access token carries the jti of the refresh token it came from (claim
refresh_jti, copied by simplejwt into every access token the refresh token
mints) and is refused once that refresh token is blacklisted. Blacklist rows
are only ever added, and loaddata never deletes, so a restore cannot bring
such a token back."""
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

REFRESH_JTI = "refresh_jti"


class LinkedTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token[REFRESH_JTI] = token[api_settings.JTI_CLAIM]
        return token


class BlacklistAwareJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        jti = token.get(REFRESH_JTI)
        if jti is not None and BlacklistedToken.objects.filter(token__jti=jti).exists():
            raise InvalidToken({"detail": "Token is blacklisted", "code": "token_not_valid"})
        return token
