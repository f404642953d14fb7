"""What a person is told about an error, in their language.

An error's ``detail`` is written for developers and curl users (it may name values and
options).  A page shows a person the sentence here for the error's code when there is one,
translated through the locale files; otherwise the detail, translated if the locale has it.
"""

from __future__ import annotations

import tornado.locale

from rooms import errors

# Errors a person cannot fix: say what is happening and what the page will do.
PAGE_MESSAGES: dict[str, str] = {
    "unavailable": "Chat is unavailable right now. This page tries again every few seconds.",
    "store_error": "Your message could not be saved right now, so it was not sent. Try again in a moment.",
    "outcome_unknown": "The chat stopped answering while saving your message. It may have been saved: "
                       "reload the room before sending it again.",
    "internal_error": "Something went wrong on our side. Try again in a moment.",
}
# Pages for these codes reload themselves after this many seconds.
RETRY_PAGE_AFTER_S = 5
RETRY_CODES = frozenset({"unavailable"})


def page_message(locale: tornado.locale.Locale, error: errors.ChatError) -> str:
    return locale.translate(PAGE_MESSAGES.get(error.code, error.detail))
