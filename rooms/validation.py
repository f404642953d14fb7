"""Validation of names, rooms, message texts, cursors and client ids.

Values are validated *raw*: a control character is refused, never silently
stripped (Tornado's ``get_argument`` would turn it into a space).  Names and room
names are NFKC-normalised and may hold no invisible or direction-changing
character; two names are the same person in a room when their confusable
skeletons match (:func:`name_key`, Unicode TS #39 via :mod:`rooms.confusables`).
Message texts are NFC-normalised: they are shown as written.  Their line breaks are made LF
first: a browser's form sends a textarea's as CR LF, some clients send a lone CR, and every input
path (form, JSON, WebSocket) comes through :func:`clean_text`.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Literal

from . import errors
from .confusables import skeleton

NAME_MAX_CHARS = 32
ROOM_MAX_CHARS = 64
TEXT_MAX_CHARS_DEFAULT = 2000
CLIENT_ID_MAX_CHARS = 64

# Newline and tab are fine inside a message; nowhere else.
_TEXT_ALLOWED_CONTROLS = frozenset("\n\t")
ZERO_WIDTH_JOINER = "\u200d"
VARIATION_SELECTORS = frozenset(chr(c) for c in range(0xFE00, 0xFE10))
# Default_Ignorable_Code_Point letters and marks that are not category Cf (unicodedata does not
# expose the property): they render as nothing, so "Budi" plus one of them looks like "Budi".
_INVISIBLE_NOT_CF = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0")
ROOM_DOT_NAMES = frozenset({".", ".."})  # a browser resolves /rooms/.. to /


def _has_control(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    for ch in value:
        if ch in allowed:
            continue
        cat = unicodedata.category(ch)
        # Cc: C0/C1 controls (incl. DEL); Cs: lone surrogates; Zl/Zp: line/para separators.
        if cat in ("Cc", "Cs", "Zl", "Zp"):
            return True
    return False


def _is_pictograph(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _has_invisible(value: str) -> bool:
    """Format characters (Cf: zero-width spaces, soft hyphens, bidi controls, tags) and other
    invisibles; a zero-width joiner or a variation selector only inside an emoji sequence."""
    if value.isascii():  # none of those is ASCII; a room name is checked on every request
        return False
    for i, ch in enumerate(value):
        if ch in VARIATION_SELECTORS:
            if i == 0 or not _is_pictograph(value[i - 1]):
                return True
        elif ch == ZERO_WIDTH_JOINER:
            before = value[i - 1] if i > 0 else ""
            if before in VARIATION_SELECTORS and i > 1:
                before = value[i - 2]
            after = value[i + 1] if i + 1 < len(value) else ""
            if not (before and after and _is_pictograph(before) and _is_pictograph(after)):
                return True
        elif ch in _INVISIBLE_NOT_CF or unicodedata.category(ch) == "Cf":
            return True
    return False


def _clean(value: object, what: str, max_chars: int, error: type[errors.ChatError],
           allowed: frozenset[str] = frozenset(), form: Literal["NFC", "NFKC"] = "NFC") -> str:
    if not isinstance(value, str):
        raise error(f"{what} must be a string", reason="type")
    if _has_control(value, allowed):
        raise error(f"{what} must not contain control characters", reason="control")
    value = unicodedata.normalize(form, value).strip()
    if not value:
        raise error(f"{what} must not be empty", reason="empty")
    if len(value) > max_chars:
        raise error(f"{what} must be at most {max_chars} characters", reason="too_long", limit=max_chars)
    return value


def _clean_label(value: object, what: str, max_chars: int, error: type[errors.ChatError]) -> str:
    """A name or room name: NFKC, no control, invisible or direction-changing character."""
    if isinstance(value, str) and _has_invisible(value):
        raise error(f"{what} must not contain invisible or direction-changing characters", reason="invisible")
    return _clean(value, what, max_chars, error, form="NFKC")


def clean_name(value: object) -> str:
    return _clean_label(value, "name", NAME_MAX_CHARS, errors.InvalidName)


def clean_room(value: object) -> str:
    room = _clean_label(value, "room", ROOM_MAX_CHARS, errors.InvalidRoom)
    if "/" in room:
        # A slash would make /rooms/<room>/... ambiguous.
        raise errors.InvalidRoom("room must not contain '/'", reason="slash")
    if room in ROOM_DOT_NAMES:
        raise errors.InvalidRoom("room must not be '.' or '..'", reason="dots")
    return room


def normalise_line_breaks(text: str) -> str:
    """CR LF and a lone CR become LF (HTML submits a textarea's line breaks as CR LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def clean_text(value: object, max_chars: int = TEXT_MAX_CHARS_DEFAULT) -> str:
    if isinstance(value, str):
        value = normalise_line_breaks(value)
    return _clean(value, "text", max_chars, errors.InvalidText, _TEXT_ALLOWED_CONTROLS)


def clean_client_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > CLIENT_ID_MAX_CHARS:
        raise errors.InvalidClientId(f"client_id must be a string of 1 to {CLIENT_ID_MAX_CHARS} characters")
    if _has_control(value):
        raise errors.InvalidClientId("client_id must not contain control characters")
    return value


@functools.lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """The form under which two names are the same person in a room: NFKC, ASCII letters in
    lower case, the confusable skeleton (so a Cyrillic or Greek look-alike, capital or not, meets
    its Latin letter), casefolded and skeletoned again, variation selectors dropped and white
    space collapsed.  ASCII goes to lower case first because TS #39 takes a capital I for an l:
    "BUDI" is Budi.  (The price: a Cyrillic capital I is not taken for a Latin one.)"""
    folded = "".join(ch.lower() if ch.isascii() else ch for ch in unicodedata.normalize("NFKC", name))
    key = skeleton(skeleton(folded).casefold())
    return " ".join("".join(ch for ch in key if ch not in VARIATION_SELECTORS).split())


def parse_cursor(value: str | None) -> int | None:
    """``after=`` / ``before=``: absent, or a non-negative integer."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise errors.InvalidCursor("cursor must be a non-negative integer")
    return int(value)
