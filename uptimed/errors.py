"""uptimed's own exceptions: a few named kinds, so callers decide by type, not by text."""

from __future__ import annotations


class UptimedError(Exception):
    """Base of uptimed's errors."""


class ServiceUnavailable(UptimedError):
    """PostgreSQL, Redis or Kafka could not be reached or used."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
