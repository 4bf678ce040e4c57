"""The one redaction that every text daskem shows or writes passes through.

A credential can be written into a URL (``s3://KEY:SECRET@bucket/…``,
``https://host/data.zarr?sig=…&X-Amz-Credential=…``).  :func:`redact` hides
it in any text: the user information of every URL, the value of every query
parameter whose name says it is a secret, and, anywhere else in the text,
each secret seen earlier in a URL (third-party errors quote parts of a URL
without its scheme, as botocore's ``Invalid bucket name "KEY:SECRET@bucket"``).

It is applied where text leaves daskem: every :class:`~daskem.exceptions.DaskemError`
message, log record, warning and report the command line prints, and every
file daskem writes that records a path (model attributes, job reports).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import unquote

#: What replaces a secret.
HIDDEN = "***"
#: ``scheme://userinfo@`` — the userinfo of a URL: ``user``, or ``user:password`` where the password may
#: hold ``/`` unescaped (cloud secret keys do), up to the first ``@``.
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s'\":]+|[^/?#@\s'\":]*:[^@\s'\"]*)@")
#: Query parameters whose values are secrets (signatures, tokens, keys), by name.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:[\w.-]*(?:token|sig|signature|secret|key|password|passwd|pwd|credential|auth|session)"
    r"[\w.-]*|x-amz-[\w.-]+|x-goog-[\w.-]+)=)(?P<value>[^&#\s'\"]*)",
    re.IGNORECASE,
)
#: Secrets seen in URLs so far, hidden wherever they appear later (shorter ones would hide ordinary words).
_MIN_SECRET = 4
_seen: set[str] = set()
_seen_lock = threading.Lock()


def remember(text: Any) -> None:
    """Record the secrets of every URL in ``text`` (a string; anything else is ignored), so that
    :func:`redact` hides them even where a message quotes them without their URL."""
    if not isinstance(text, str) or "://" not in text and "=" not in text:
        return
    found = set()
    for match in _USERINFO.finditer(text):
        userinfo = match["userinfo"]
        found.update({userinfo, unquote(userinfo), *userinfo.split(":"), *unquote(userinfo).split(":")})
    for match in _SECRET_PARAMETER.finditer(text):
        found.update({match["value"], unquote(match["value"])})
    found = {secret for secret in found if len(secret) >= _MIN_SECRET}
    if found:
        with _seen_lock:
            _seen.update(found)


def redact(text: Any) -> str:
    """``text`` (made a string) with every credential it holds replaced by ``***``."""
    text = str(text)
    remember(text)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)
    text = _SECRET_PARAMETER.sub(lambda m: f"{m['name']}{HIDDEN}", text)
    with _seen_lock:
        secrets = sorted(_seen, key=len, reverse=True)  # a secret that holds another first
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


def redact_all(value: Any) -> Any:
    """Every string inside ``value`` (nested dicts, lists and tuples of JSON-able values) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_all(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (its arguments merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (tracebacks included) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


# Every record of daskem's logger, whatever handler the application gives it.
logging.getLogger("daskem").addFilter(RedactingFilter())
