"""The public addresses alerts link to: a monitor's page, an incident's, and signed acknowledge links.

Only with ``[api] public_url`` set: without it uptimed does not know where
its pages are reached, and no alert carries a link (never a localhost one).

An acknowledge link names one incident and the integration it was sent to,
signed with a key the cluster shares (``signing_keys``): changing either
number breaks the signature, so a link acknowledges the incident it came
with and no other. It needs no sign-in (the person on call reads it on a
phone); it lasts while the incident is open and works once. Opening it only
shows the incident: acknowledging takes a press of its button (a POST), so a
mail system's link scanner cannot acknowledge anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

ACK_KEY = "acknowledge-links"
"""The name of the signing key in ``signing_keys``."""


def monitor_url(public_url: str, monitor_id: int) -> str:
    return f"{public_url}/monitors/{monitor_id}"


def incident_url(public_url: str, incident_id: int) -> str:
    return f"{public_url}/incidents/{incident_id}"


def ack_path(key: bytes, incident_id: int, integration_id: int) -> str:
    """``/ack/<incident>/<integration>/<signature>``."""
    return f"/ack/{incident_id}/{integration_id}/{ack_signature(key, incident_id, integration_id)}"


def ack_url(public_url: str, key: bytes, incident_id: int, integration_id: int) -> str:
    return public_url + ack_path(key, incident_id, integration_id)


def ack_signature(key: bytes, incident_id: int, integration_id: int) -> str:
    """128 bits of HMAC-SHA256 over the two ids, URL-safe base64 (22 characters)."""
    digest = hmac.new(key, f"ack:{incident_id}:{integration_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def ack_signed(key: bytes, incident_id: int, integration_id: int, signature: str) -> bool:
    """Whether ``signature`` is this incident's and integration's (compared in constant time)."""
    return hmac.compare_digest(ack_signature(key, incident_id, integration_id).encode(), signature.encode())
