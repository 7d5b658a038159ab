"""Loading plugins from entry points: one way for channels (``uptimed.channels``) and kinds (``uptimed.kinds``).

An entry point names a class (instantiated without arguments) or an
instance. One that fails to import, to instantiate, to pass its registry's
check or that calls itself by another name is reported with the reason, and
the rest work on: a broken plugin never takes the daemon down. Built-ins are
entry points of uptimed's own distribution, loaded the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points


@dataclass(frozen=True)
class Origin:
    """Where a plugin object came from."""

    name: str
    distribution: str | None = None
    version: str | None = None
    value: str | None = None
    """The entry point's target, e.g. ``uptimed.channels.slack:SlackChannel``."""


Checker = Callable[[object], "str | None"]
"""Why an object is not a usable plugin of a registry, or None when it is."""


def group_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, by name."""
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def load(entry_point: EntryPoint, check: Checker, what: str) -> tuple[object | None, str | None, Origin]:
    """The plugin ``entry_point`` names, or why it cannot be used; never raises."""
    dist = getattr(entry_point, "dist", None)
    origin = Origin(
        entry_point.name,
        dist.name if dist is not None else None,
        dist.version if dist is not None else None,
        entry_point.value,
    )
    try:
        obj = entry_point.load()
    except Exception as exc:  # noqa: BLE001 (a plugin may raise anything on import)
        return None, f"import failed: {reason(exc)}", origin
    return *instantiate(origin, obj, check, what), origin


def instantiate(origin: Origin, obj: object, check: Checker, what: str) -> tuple[object | None, str | None]:
    """``obj`` (a class or an instance) as a plugin called ``origin.name``, or why not."""
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 (nor may its constructor)
            return None, f"could not be created: {reason(exc)}"
    if problem := check(obj):
        return None, f"not a {what}: {problem}"
    name = getattr(obj, "name", None)
    if name != origin.name:
        return None, f"the entry point is called {origin.name!r} but the {what} calls itself {name!r}"
    return obj, None


def reason(exc: BaseException) -> str:
    """An exception in one line: its type and message, at most 500 characters."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__
