"""A monitor's credentials: the password in its URL, sensitive header values and query parameters.

They are secrets like an integration's: shown masked by the API and the
pages (:func:`masked_target`, :func:`masked_headers`), kept when an edit
leaves them out or sends back their masked form (:func:`keep_credentials`),
and never part of what leaves uptimed about the monitor: notifications carry
:func:`public_target` (no user info, sensitive query values masked).

A header is sensitive by its name (:data:`SENSITIVE`: ``Authorization``,
``Cookie``, ``X-Api-Key``, anything with token, secret, key, password, auth,
session or signature in it), as is a query parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from uptimed.monitor import MonitorFields

SENSITIVE = re.compile(r"auth|cookie|token|secret|key|pass(word|wd)?|session|signature|credential|sig$", re.IGNORECASE)
"""Names of headers and query parameters whose values are secrets."""

MASK = "********"


def redact(value: str) -> str:
    """``"…cdef"`` (the last four characters) for a long secret, :data:`MASK` for a short one."""
    return f"…{value[-4:]}" if len(value) >= 12 else MASK


def _is_masked(value: str) -> bool:
    return value == MASK or (value.startswith("…") and len(value) == 5)


def sensitive(name: str) -> bool:
    return bool(SENSITIVE.search(name))


def _masked_query(query: str) -> str:
    if not query:
        return query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return query
    if not any(sensitive(name) for name, _ in pairs):
        return query
    return urlencode([(name, MASK if sensitive(name) else value) for name, value in pairs], safe="*")


def masked_target(target: str) -> str:
    """``target`` as the API and the pages show it: the URL's password and sensitive query values masked."""
    if "://" not in target:
        return target  # host:port holds no secret
    try:
        parts = urlsplit(target)
        password, username = parts.password, parts.username
    except ValueError:
        return target
    netloc = parts.netloc
    if password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{quote(username or '', safe='')}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, _masked_query(parts.query), parts.fragment))


def public_target(target: str) -> str:
    """``target`` as a notification or a log may carry it: without user info, sensitive query values masked."""
    if "://" not in target:
        return target
    try:
        parts = urlsplit(target)
    except ValueError:
        return target
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, _masked_query(parts.query), parts.fragment))


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with each sensitive value masked."""
    return {name: redact(value) if sensitive(name) else value for name, value in headers.items()}


def keep_credentials(stored: MonitorFields, new: MonitorFields) -> MonitorFields:
    """``new`` with the credentials it leaves out, or sends back masked, taken from ``stored``.

    A target equal to the stored one's masked form is the stored target. A
    sensitive header left out, or sent masked, keeps its stored value; sent
    empty, it is removed.
    """
    target = stored.target if new.target == masked_target(stored.target) and new.kind == stored.kind else new.target
    headers = dict(new.http.headers)
    present = {name.lower(): name for name in headers}
    for name, value in stored.http.headers.items():
        if not sensitive(name):
            continue
        sent = present.get(name.lower())
        if sent is None:
            headers[name] = value
        elif _is_masked(headers[sent]) and headers[sent] == redact(value):
            headers[sent] = value
    headers = {name: value for name, value in headers.items() if not (sensitive(name) and value == "")}
    if target == new.target and headers == new.http.headers:
        return new
    http = new.http.model_copy(update={"headers": headers})
    return new.model_copy(update={"target": target, "http": http})
