"""Babel message catalogs: English msgids, zh-CN the default language.

Catalogs are read from the .po files shipped in the package (no compile step), once per
process. The request's language lives in a context variable set by the locale middleware,
so services and templates translate without passing the request around.
"""

from __future__ import annotations

import contextvars
from functools import cache
from typing import Any

from babel.messages.pofile import read_po
from babel.support import LazyProxy

from torreya.settings import PACKAGE_DIR

LANGUAGES = {"zh-CN": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh-CN"
# English needs a catalog only for the symbolic terms shown from data (torreya/terms.py).
_CATALOG_DIRS = {"zh-CN": "zh_CN", "en": "en"}

current_language: contextvars.ContextVar[str] = contextvars.ContextVar(
    "torreya_language", default=DEFAULT_LANGUAGE
)


@cache
def _messages(language: str) -> dict[str, str]:
    folder = _CATALOG_DIRS.get(language)
    if folder is None:
        return {}
    path = PACKAGE_DIR / "locale" / folder / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=folder)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


def gettext(message: str, **params: Any) -> str:
    """Translate into the current language; `%(name)s` placeholders filled from params."""
    text = _messages(current_language.get()).get(message, message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    params.setdefault("num", n)
    return gettext(singular if n == 1 else plural, **params)


def lazy_gettext(message: str) -> LazyProxy:
    return LazyProxy(gettext, message, enable_cache=False)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    header = (accept_language or "").lower()
    for part in header.split(","):
        tag = part.split(";", 1)[0].strip()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


_ = gettext
