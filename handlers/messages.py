"""What a person is told about an error, in their language: the one page-side mapping.

An error's ``detail`` is written for developers and curl users (it may name values and
options) and stays as it is on the wire.  A page (a form shown again, an error page, the
client's "Not sent: …") shows a person the sentence here instead: for the error's code and its
``reason`` when there is one for both (``invalid_text/empty``), else for its code, translated
through the locale files.  Every code in ``rooms/errors.py`` has a sentence
(``tests/browser/test_client_static.py`` checks it, and that Indonesian has each).
"""

from __future__ import annotations

import tornado.locale

from rooms import errors

# By code, and by "code/reason" where the reason changes what a person should do.
# %(limit)d is the limit a too-long value broke.
PAGE_MESSAGES: dict[str, str] = {
    "bad_request": "The page sent something the chat could not read. Reload the page and try again.",
    "invalid_name": "This name cannot be used. Pick another one.",
    "invalid_name/empty": "Type the name you want to be seen by.",
    "invalid_name/too_long": "This name is too long. Use at most %(limit)d characters.",
    "invalid_name/control": "This name has a character that cannot be shown, such as a line break. Remove it.",
    "invalid_name/invisible": "This name has an invisible character, such as a zero-width space. Remove it.",
    "invalid_room": "This room name cannot be used. Pick another one.",
    "invalid_room/empty": "Type the name of the room to join, or of a new one to start.",
    "invalid_room/too_long": "This room name is too long. Use at most %(limit)d characters.",
    "invalid_room/control": "This room name has a character that cannot be shown, such as a line break. "
                            "Remove it.",
    "invalid_room/invisible": "This room name has an invisible character, such as a zero-width space. Remove it.",
    "invalid_room/slash": "A room name cannot contain “/”. Pick another one.",
    "invalid_room/dots": "A room name cannot be “.” or “..”. Pick another one.",
    "invalid_text": "This message cannot be sent as it is: it is empty, too long, or has a character "
                    "that cannot be sent.",
    "invalid_text/empty": "The message is empty. Write something before you send it.",
    "invalid_text/too_long": "This message is too long. Use at most %(limit)d characters, or send it in parts.",
    "invalid_text/control": "This message has a character that cannot be sent, such as a control character. "
                            "Remove it and send again.",
    "invalid_cursor": "This link to older messages is broken. Go back to the newest messages.",
    "invalid_json": "The page sent something the chat could not read. Reload the page and try again.",
    "unknown_type": "The page sent something the chat could not read. Reload the page and try again.",
    "invalid_client_id": "The page sent something the chat could not read. Reload the page and try again.",
    "unauthorized": "Your session has ended. Join the room again.",
    "forbidden": "This was refused: you are no longer in this room, or the request came from another site. "
                 "Join the room again.",
    "not_found": "There is nothing at this address.",
    "left": "You left this room (here or in another tab). Join it again to send and read here.",
    "method_not_allowed": "This address cannot be used that way.",
    "no_such_room": "There is no room of that name yet. Join it to start it.",
    "name_taken": "This name is taken in this room right now. Pick another one.",
    "payload_too_large": "This is too large to send. Make it shorter and try again.",
    "rate_limited": "You are sending messages too fast. Wait a few seconds, then send again.",
    "unavailable": "Chat is unavailable right now. This page tries again every few seconds.",
    "not_ready": "Chat is starting or stopping right now. Try again in a moment.",
    "store_error": "Your message could not be saved right now, so it was not sent. Try again in a moment.",
    "outcome_unknown": "The chat stopped answering while saving your message. It may have been saved: "
                       "reload the room before sending it again.",
    "internal_error": "Something went wrong on our side. Try again in a moment.",
}
# Pages for these codes reload themselves after this many seconds.
RETRY_PAGE_AFTER_S = 5
RETRY_CODES = frozenset({"unavailable"})


def page_message(locale: tornado.locale.Locale, error: errors.ChatError) -> str:
    """The sentence for a person about ``error``, in ``locale``'s language."""
    reason = getattr(error, "reason", "")
    template = PAGE_MESSAGES.get(f"{error.code}/{reason}") if reason else None
    if template is not None and "%(limit)d" in template and error.limit is None:
        template = None  # a too_long without its limit: the code's sentence
    if template is None:
        template = PAGE_MESSAGES.get(error.code)
    if template is None:  # a code without a sentence: the tests see that none is missing
        return locale.translate(error.detail)
    text = locale.translate(template)
    return text % {"limit": error.limit} if error.limit is not None and "%(limit)d" in text else text


def client_error_strings(locale: tornado.locale.Locale) -> dict[str, str]:
    """The code-level sentences for the client (``error_<code>``): a failed send says why in the
    reader's language.  Error frames carry no reason, so the client words by code alone."""
    return {f"error_{code}": locale.translate(text) for code, text in PAGE_MESSAGES.items() if "/" not in code}
