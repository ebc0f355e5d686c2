"""API tokens: signed, stateless, and void once the user's password changes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "kafkaweb.api.token"
PREFIX = "kw_"


def _fingerprint(user: Any) -> str:
    # The password hash changes with the password: changing it revokes every token.
    return salted_hmac(SALT, f"{user.pk}:{user.password}").hexdigest()[:20]


def token_for(user: Any) -> str:
    return PREFIX + signing.dumps({"u": user.pk, "f": _fingerprint(user)}, salt=SALT)


def user_for(token: str) -> Any | None:
    """The active user a token belongs to, or None if it is forged, revoked or malformed."""
    if not token.startswith(PREFIX):
        return None
    try:
        data = signing.loads(token[len(PREFIX) :], salt=SALT)
    except signing.BadSignature:
        return None
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or not constant_time_compare(_fingerprint(user), str(data.get("f"))):
        return None
    return user
