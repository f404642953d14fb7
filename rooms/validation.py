"""Validation of names, rooms, message texts, cursors and client ids.

Values are validated *raw*: a control character is refused, never silently
stripped (Tornado's ``get_argument`` would turn it into a space).  Everything is
NFC-normalised and trimmed first; names clash when their casefolded forms match.
"""

from __future__ import annotations

import unicodedata

from . import errors

NAME_MAX_CHARS = 32
ROOM_MAX_CHARS = 64
TEXT_MAX_CHARS_DEFAULT = 2000
CLIENT_ID_MAX_CHARS = 64

# Newline and tab are fine inside a message; nowhere else.
_TEXT_ALLOWED_CONTROLS = frozenset("\n\t")


def _has_control(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    for ch in value:
        if ch in allowed:
            continue
        cat = unicodedata.category(ch)
        # Cc: C0/C1 controls (incl. DEL); Cs: lone surrogates; Zl/Zp: line/para separators.
        if cat in ("Cc", "Cs", "Zl", "Zp"):
            return True
    return False


def _clean(value: object, what: str, max_chars: int, error: type[errors.ChatError],
           allowed: frozenset[str] = frozenset()) -> str:
    if not isinstance(value, str):
        raise error(f"{what} must be a string")
    if _has_control(value, allowed):
        raise error(f"{what} must not contain control characters")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise error(f"{what} must not be empty")
    if len(value) > max_chars:
        raise error(f"{what} must be at most {max_chars} characters")
    return value


def clean_name(value: object) -> str:
    return _clean(value, "name", NAME_MAX_CHARS, errors.InvalidName)


def clean_room(value: object) -> str:
    room = _clean(value, "room", ROOM_MAX_CHARS, errors.InvalidRoom)
    if "/" in room:
        # A slash would make /rooms/<room>/... ambiguous.
        raise errors.InvalidRoom("room must not contain '/'")
    return room


def clean_text(value: object, max_chars: int = TEXT_MAX_CHARS_DEFAULT) -> str:
    return _clean(value, "text", max_chars, errors.InvalidText, _TEXT_ALLOWED_CONTROLS)


def clean_client_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > CLIENT_ID_MAX_CHARS:
        raise errors.InvalidClientId(f"client_id must be a string of 1 to {CLIENT_ID_MAX_CHARS} characters")
    if _has_control(value):
        raise errors.InvalidClientId("client_id must not contain control characters")
    return value


def name_key(name: str) -> str:
    """The form under which two names are the same person in a room."""
    return unicodedata.normalize("NFC", name.casefold())


def parse_cursor(value: str | None) -> int | None:
    """``after=`` / ``before=``: absent, or a non-negative integer."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise errors.InvalidCursor("cursor must be a non-negative integer")
    return int(value)
