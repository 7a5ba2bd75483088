"""Storage passwords masked in any text: messages, tracebacks, logs, the study note, files.

SQLAlchemy takes spaces, quotes, ``#``, ``/`` and ``%``-escapes in a password, so nothing in
free text marks where one ends. The passwords of every storage URL this process is given
(:func:`remember_passwords`: a spec read, a storage checked, shown or opened) are therefore
removed wherever they appear, in every spelling; any other URL's password is masked from its
form alone (:func:`masked_text`).
"""

from __future__ import annotations

import json
import re


__all__ = ["MASK", "masked_text", "masked_url", "remember_passwords"]

MASK = "***"

# The password of a URL in free text (``scheme://user:password@host``), up to the last ``@``
# of its line whatever the characters: SQLAlchemy takes spaces, quotes, ``#`` and ``/`` in a
# password, so none of them can end it. One already masked (``***@``) is kept as it is, so
# that masking twice changes nothing.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\n]*:)"
    r"(?P<secret>\*\*\*(?=@)|[^\n]*)(?P<tail>@)"
)
# A ``password=`` query parameter, up to the next ``&`` or the end of its line.
_QUERY_PASSWORD = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd)=)"
    r"(?P<secret>\*\*\*(?=[&\s\"'`]|$)|[^&\n]*)(?P<tail>)",
    re.IGNORECASE | re.MULTILINE,
)
# The password of a URL that is the whole string: up to its first ``@`` (where SQLAlchemy ends
# it) and up to its last one (where its writer may have meant it to end).
_WHOLE_URL_PASSWORDS = (
    re.compile(r"^[\w+]+://[^:/]*:(?P<secret>[^@]*)@"),
    re.compile(r"^[\w+]+://[^:/]*:(?P<secret>.*)@", re.DOTALL),
)
_QUERY_KEYS = ("password", "passwd", "pwd")

#: The passwords of every storage URL this process was given (a spec read, a storage opened),
#: in every spelling that text may hold them: as written, percent-decoded and encoded, and
#: escaped as in JSON and TOML strings. :func:`masked_text` removes them from any text, so
#: that messages, tracebacks, the study note and files never show them, whatever they quote.
_KNOWN_PASSWORDS: set[str] = set()

#: Passwords shorter than this are not scrubbed from free text (they would mask common words);
#: in a URL they are masked all the same.
_SHORTEST_SCRUBBED = 3


def masked_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    The one place where secrets are hidden: messages, tracebacks, the study note (which shows
    the spec's text), reports and anything else that shows or stores a URL or a spec go
    through it. The passwords of the storage URLs this process was given
    (:func:`remember_passwords`) are removed wherever they are, in any spelling; in any
    other URL, both ``scheme://user:password@host`` (up to the line's last ``@``) and a
    ``password=`` query parameter (up to the next ``&``) are masked. A URL without a password
    (its password in ``PGPASSWORD`` or ``~/.pgpass``) is left as it is.
    """
    for secret in sorted(_KNOWN_PASSWORDS, key=len, reverse=True):
        text = text.replace(secret, MASK)

    def mask(match: re.Match[str]) -> str:
        secret = match.group("secret")
        return match.group("head") + (MASK if secret else "") + match.group("tail")

    return _QUERY_PASSWORD.sub(mask, _URL_PASSWORD.sub(mask, text))


def masked_url(url: str) -> str:
    """The storage URL ``url`` with its password replaced by ``***`` (:func:`masked_text`)."""
    remember_passwords(url)
    return masked_text(url)


def remember_passwords(url: str) -> None:
    """Have :func:`masked_text` remove the passwords of storage URL ``url`` from any text.

    Called on every storage URL a spec gives or a storage is opened with. Each password is
    remembered as SQLAlchemy reads it (percent-decoded) and as written (up to the first and
    to the last ``@``), each also percent-encoded and escaped as JSON and TOML strings are.
    """
    _KNOWN_PASSWORDS.update(
        spelling
        for secret in _passwords_of(url)
        for spelling in _spellings(secret)
        if len(spelling) >= _SHORTEST_SCRUBBED
    )


def _passwords_of(url: str) -> set[str]:
    """The passwords in ``url``, as written and as SQLAlchemy reads them."""
    from urllib.parse import parse_qsl

    from sqlalchemy.engine import make_url

    found = {m.group("secret") for p in _WHOLE_URL_PASSWORDS if (m := p.match(url))}
    query = url.partition("@")[2].partition("?")[2] if "@" in url else url.partition("?")[2]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in _QUERY_KEYS:
            found.add(value)
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key.lower() in _QUERY_KEYS:
            found.add(value)
    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy parses: the forms above are all there is
        return {s for s in found if s}
    found.add(parsed.password or "")
    for key, value in parsed.query.items():
        if key.lower() in _QUERY_KEYS:
            found.update([value] if isinstance(value, str) else value)
    return {str(s) for s in found if s}


def _spellings(secret: str) -> set[str]:
    """``secret`` as text may hold it: as is, percent-decoded and encoded, JSON/TOML-escaped."""
    from urllib.parse import quote
    from urllib.parse import quote_plus
    from urllib.parse import unquote
    from urllib.parse import unquote_plus

    plain = {secret, unquote(secret), unquote_plus(secret)}
    encoded = {f(s, safe=safe) for s in plain for f in (quote, quote_plus) for safe in ("", "/")}
    escaped = {
        json.dumps(s, ensure_ascii=ascii)[1:-1] for s in plain | encoded for ascii in (True, False)
    }
    return plain | encoded | escaped


def _scrubbed(text: str, url: str) -> str:
    """``text`` (a driver's error, say) masked, and without the passwords of ``url`` at all."""
    remember_passwords(url)
    return masked_text(text)
