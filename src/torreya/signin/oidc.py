"""OpenID Connect sign-in through authlib (SPEC §4.7, §5.1): a government single sign-on
(浙里办) or any provider. Authorization code flow with PKCE (S256), state and nonce, all
kept by authlib in the signed session. A provider account is linked to a resident by its
`iss` + `sub`; the first time, a verified `phone_number` claim that matches exactly one
active resident links it. Otherwise the person is told plainly what to do.
"""

from __future__ import annotations

import logging
import re
from functools import cache

import httpx
from authlib.integrations.starlette_client import OAuth, OAuthError
from tortoise.exceptions import IntegrityError

from torreya import audit
from torreya.errors import DomainError, NotFoundError
from torreya.models import Role, User, UserIdentity
from torreya.settings import Settings
from torreya.signin.phones import normalize_phone

log = logging.getLogger("torreya.signin")


class OidcError(DomainError):
    status = 400
    code = "oidc_failed"
    message = ("The sign-in with %(provider)s did not complete. Please try again, or log in "
               "with your phone.")


class OidcStateError(OidcError):
    code = "oidc_state"
    message = ("This sign-in was started in another browser or has expired. Please start "
               "again.")


class OidcPhoneError(OidcError):
    code = "oidc_no_phone"
    message = ("%(provider)s did not confirm a phone number for you. Log in with your phone "
               "instead, or ask your village committee.")


class OidcNoResidentError(OidcError):
    status = 409
    code = "no_account"
    message = ("No resident account uses the phone number of your %(provider)s account. Ask "
               "your village committee to add your number.")


class OidcSeveralError(OidcError):
    status = 409
    code = "several_accounts"
    message = ("Several residents use the phone number of your %(provider)s account. Please "
               "log in with your phone or a username.")


def enabled(settings: Settings) -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID)


def label(settings: Settings) -> str:
    """The button's text (TORREYA_OIDC_LABEL, e.g. 浙里办登录)."""
    return settings.OIDC_LABEL or "OpenID"


# What a button's text adds to the provider's name: "浙里办登录", "Log in with Zheliban".
_BUTTON_WORDS = re.compile(r"^\s*(?:log ?in|sign ?in)(?: with)?\s+|\s*(?:登录|登入|log ?in|"
                           r"sign ?in)\s*$", re.IGNORECASE)


def name(settings: Settings) -> str:
    """The provider's name, for sentences ("浙里办没有提供…", not "浙里办登录没有提供…")."""
    return _BUTTON_WORDS.sub("", label(settings)).strip() or label(settings)


@cache
def _client(issuer: str, client_id: str, client_secret: str, scopes: str):
    oauth = OAuth()
    oauth.register(
        name="oidc", client_id=client_id, client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": scopes, "code_challenge_method": "S256", "timeout": 10})
    return oauth.create_client("oidc")


def client_for(settings: Settings):
    if not enabled(settings):
        raise NotFoundError()
    return _client(settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET,
                   settings.OIDC_SCOPES)


async def claims_from_callback(settings: Settings, request) -> dict:
    """The verified ID token's claims (userinfo merged), or an OidcError naming why not."""
    client = client_for(settings)
    provider = name(settings)
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        log.info("OIDC callback refused: %s %s", exc.error, exc.description)
        if exc.error in ("mismatching_state", "missing_state"):
            raise OidcStateError(provider=provider) from None
        raise OidcError(provider=provider) from None
    except (httpx.HTTPError, ValueError, KeyError) as exc:  # provider down, bad ID token
        log.warning("OIDC callback failed: %r", exc)
        raise OidcError(provider=provider) from None
    claims = dict(token.get("userinfo") or {})
    if "phone_number" not in claims:
        try:
            claims |= dict(await client.userinfo(token=token))
        except (httpx.HTTPError, OAuthError, ValueError) as exc:
            log.info("OIDC userinfo failed: %r", exc)
    if not claims.get("sub"):
        raise OidcError(provider=provider)
    return claims


async def resident_for(settings: Settings, claims: dict) -> User:
    """The resident this provider account belongs to, linking it the first time.

    Raises OidcPhoneError, OidcNoResidentError, OidcSeveralError.
    """
    provider = name(settings)
    issuer, subject = settings.OIDC_ISSUER, str(claims["sub"])[:255]
    linked = await UserIdentity.get_or_none(issuer=issuer, subject=subject)
    if linked is not None:
        user = await User.get_or_none(id=linked.user_id, is_active=True)
        if user is not None:
            return user
    verified = claims.get("phone_number_verified") in (True, "true")
    try:
        phone = normalize_phone(str(claims.get("phone_number") or "")) if verified else None
    except DomainError:
        phone = None
    if phone is None:
        raise OidcPhoneError(provider=provider)
    residents = await User.filter(phone=phone, role=Role.RESIDENT, is_active=True).limit(2)
    if not residents:
        raise OidcNoResidentError(provider=provider)
    if len(residents) > 1:
        raise OidcSeveralError(provider=provider)
    await link(settings, user=residents[0], subject=subject)
    return residents[0]


async def link(settings: Settings, *, user: User, subject: str) -> None:
    """Link a provider account to `user` (idempotent; one resident per provider account)."""
    try:
        identity, made = await UserIdentity.get_or_create(
            issuer=settings.OIDC_ISSUER, subject=subject,
            defaults={"user_id": user.id, "label": name(settings)[:64]})
    except IntegrityError:  # a concurrent first sign-in linked it
        return
    if made:
        await audit.record(user, "signin:identity:link", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id,
                           data={"provider": identity.label})


async def unlink(*, user: User, identity_id: int) -> None:
    identity = await UserIdentity.get_or_none(id=identity_id, user_id=user.id)
    if identity is None:
        raise NotFoundError()
    await identity.delete()
    await audit.record(user, "signin:identity:unlink", connection=None,
                       subject=f"user:{user.id}", village_id=user.village_id,
                       data={"provider": identity.label})
