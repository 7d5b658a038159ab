"""The rules' own errors, and where a problem is: a tuple location until a face renders it.

``NotFound`` and ``DeclaredInFile`` say why a user cannot have or change an
object, ``Conflict`` why not now; ``Invalid`` lists each :class:`Problem` with its location inside what
was validated (``("config", "webhookUrl")``, ``("regions",)``). The API
renders them as 404 / 409 / 422 JSON, the pages as error pages and form
errors, the config file as ``integrations[0].config.webhookUrl`` with a line.
:func:`dotted` is the one way a location is written out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]
"""Where a problem is: keys and list indexes, outermost first."""


def dotted(loc: Sequence[str | int]) -> str:
    """``("monitors", 0, "http", "method")`` -> ``"monitors[0].http.method"``; ``()`` -> ``""``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input. Never holds the rejected value: it may be a secret."""

    loc: Loc
    msg: str
    type: str = "value_error"
    """A stable code: ``missing``, ``string_too_long``, ``unknown_channel`` ..."""
    about: Loc = ()
    """For a rule across fields, whose location is the whole object: the field a form shows it beside."""

    def within(self, *prefix: str | int) -> Problem:
        """The same problem inside something larger: ``("config",)`` + ``("webhookUrl",)``."""
        return Problem((*prefix, *self.loc), self.msg, self.type, self.about)


class RuleError(Exception):
    """Base of the rules' errors."""


class NotFound(RuleError):
    """No such object among the user's own: another user's answers the same."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class DeclaredInFile(RuleError):
    """A monitor or integration declared in the config file: only the file changes it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"this {what} is declared in the config file")
        self.what = what


class Conflict(RuleError):
    """The object's state does not allow it now: an incident already acknowledged or over, a policy in use."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(RuleError):
    """The input does not pass; ``problems`` says where and why, each one."""

    def __init__(self, problems: Iterable[Problem], *, available: Sequence[str] | None = None) -> None:
        self.problems = tuple(problems)
        self.available = list(available) if available is not None else None
        """For an unknown channel type: the installed ones."""
        super().__init__("; ".join(f"{dotted(p.loc)}: {p.msg}" if p.loc else p.msg for p in self.problems))


class Located(ValueError):
    """Raised inside a pydantic validator for a problem that belongs elsewhere than the validator's own place.

    A model validator of the whole settings raises ``Located(("monitors", 2, "quorum"), ...)``;
    :func:`problem_of` puts the problem there instead of on the whole model.
    """

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Across(ValueError):
    """Raised by a model validator for a rule across fields: it stays on the whole model, ``about`` one field.

    ``Across("timeout", "timeout (20 s) is longer than interval (10 s)")``: the
    API and the config file report it on the monitor; a form shows it beside its timeout field.
    """

    def __init__(self, about: str, message: str) -> None:
        super().__init__(message)
        self.about: Loc = (about,)


def _n(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _items(n: Any) -> str:
    return "1 item" if n == 1 else f"{n} items"


_PLAIN: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda c: "is required",
    "extra_forbidden": lambda c: "is not a field here (check its spelling)",
    "string_too_short": lambda c: (
        "must not be empty" if c.get("min_length") == 1 else f"must be at least {c.get('min_length')} characters"
    ),
    "string_too_long": lambda c: f"must be at most {c.get('max_length')} characters",
    "too_short": lambda c: f"needs at least {_items(c.get('min_length'))}",
    "too_long": lambda c: f"may hold at most {_items(c.get('max_length'))}",
    "int_parsing": lambda c: "must be a whole number",
    "int_type": lambda c: "must be a whole number",
    "int_from_float": lambda c: "must be a whole number",
    "float_parsing": lambda c: "must be a number",
    "float_type": lambda c: "must be a number",
    "bool_parsing": lambda c: "must be true or false",
    "bool_type": lambda c: "must be true or false",
    "greater_than_equal": lambda c: f"must be at least {_n(c.get('ge'))}",
    "greater_than": lambda c: f"must be more than {_n(c.get('gt'))}",
    "less_than_equal": lambda c: f"must be at most {_n(c.get('le'))}",
    "less_than": lambda c: f"must be less than {_n(c.get('lt'))}",
    "literal_error": lambda c: f"must be {c.get('expected')}",
    "enum": lambda c: f"must be {c.get('expected')}",
    "string_type": lambda c: "must be text",
    "list_type": lambda c: "must be a list",
    "dict_type": lambda c: "must be a table of names and values",
    "model_type": lambda c: "must be a table of names and values",
    "string_pattern_mismatch": lambda c: "has characters that are not allowed here",
    "datetime_parsing": lambda c: "must be a date and time, e.g. 2025-06-01T02:00",
    "datetime_from_date_parsing": lambda c: "must be a date and time, e.g. 2025-06-01T02:00",
    "datetime_type": lambda c: "must be a date and time, e.g. 2025-06-01T02:00",
    "time_parsing": lambda c: "must be a time of day, e.g. 02:30",
    "time_type": lambda c: "must be a time of day, e.g. 02:30",
    "url_parsing": lambda c: "is not a valid URL",
    "url_scheme": lambda c: f"must be a URL starting with {c.get('expected_schemes')}",
}
"""pydantic's wording ("String should have at least 1 character") said plainly, by its error type."""


def plain(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error in plain words; a validator's own message as it wrote it."""
    say = _PLAIN.get(str(error.get("type")))
    if say is not None:
        try:
            return say(error.get("ctx") or {})
        except (TypeError, ValueError):
            pass
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def problem_of(error: Mapping[str, Any]) -> Problem:
    """One entry of pydantic's ``ValidationError.errors()`` as a :class:`Problem` (never with its input)."""
    loc: Loc = tuple(error.get("loc", ()))
    raised = (error.get("ctx") or {}).get("error")
    msg = plain(error)
    if isinstance(raised, Located):
        return Problem(raised.loc, msg, str(error.get("type", "value_error")))
    about = raised.about if isinstance(raised, Across) else ()
    return Problem(loc, msg, str(error.get("type", "value_error")), about)


def problems_of(exc: ValidationError) -> list[Problem]:
    """Every problem of a pydantic ``ValidationError``, in its order."""
    return [problem_of(error) for error in exc.errors(include_url=False, include_input=False)]
