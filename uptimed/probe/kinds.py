"""Finding kinds (entry points in group ``uptimed.kinds``, loaded once) and the one entry point that runs a check.

Built-in kinds (http, tcp, ping, dns, tls, postgres, redis, heartbeat) are
entry points of uptimed's own distribution, found exactly like a plugin's;
one that fails to load is listed in ``broken`` with its reason, as
``uptimed kinds`` shows, and the others work on. Importing this module loads
no kind: the registry is built on first use (:func:`default_kinds`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel

from uptimed import plugins
from uptimed.channels.schema import ConfigField, config_fields, words
from uptimed.check import CheckResult, ErrorClass
from uptimed.probe.base import CheckContext, Kind, Resolve, TargetRefused, resolve_any

if TYPE_CHECKING:
    import aiohttp

    from uptimed.monitor import Monitor

GROUP = "uptimed.kinds"
BUILTIN_DISTRIBUTION = "uptimed"
PLUGIN_GRACE_S = 2.0
"""A plugin kind's check is cut off this long after its monitor's timeout (built-ins keep their own)."""

log = structlog.get_logger()


@dataclass(frozen=True)
class LoadedKind:
    """A working kind and where it came from."""

    name: str
    kind: Kind
    distribution: str | None = None
    version: str | None = None
    value: str | None = None

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def scheduled(self) -> bool:
        """Checked on a schedule (False: its results are pushed, as a heartbeat's)."""
        return getattr(self.kind, "scheduled", True) is not False


@dataclass(frozen=True)
class BrokenKind:
    """An entry point that could not be used, and why."""

    name: str
    reason: str
    distribution: str | None = None
    version: str | None = None
    value: str | None = None


class UnknownKindError(LookupError):
    """No kind of that name is installed (or it is broken)."""

    def __init__(self, name: str, available: Iterable[str], broken: BrokenKind | None = None) -> None:
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) or "none"
        if broken is not None:
            message = f"kind {name!r} is installed but broken ({broken.reason}); available: {listing}"
        else:
            message = f"unknown kind {name!r}; available: {listing}"
        super().__init__(message)


def check_kind(obj: object) -> str | None:
    """Why ``obj`` is not a usable kind, or ``None`` when it is."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return "has no str 'name'"
    if not name.replace("_", "").replace("-", "").isalnum() or not name[0].isalpha() or name != name.lower():
        return f"its name {name!r} is not lower-case letters, digits, '-' and '_'"
    model = getattr(obj, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "its 'config_model' is not a pydantic BaseModel subclass"
    check = getattr(obj, "check", None)
    if check is None or not inspect.iscoroutinefunction(check):
        return "has no 'async def check(self, monitor, options, context)'"
    return None


class KindRegistry:
    """The kinds this process can check, by name."""

    def __init__(self, kinds: Iterable[LoadedKind] = (), broken: Iterable[BrokenKind] = ()) -> None:
        self.kinds: dict[str, LoadedKind] = {}
        self.broken: list[BrokenKind] = list(broken)
        for loaded in kinds:
            if loaded.name in self.kinds:
                first = self.kinds[loaded.name]
                reason = f"the name is already taken by {first.distribution or first.value}"
                self.broken.append(BrokenKind(loaded.name, reason, loaded.distribution, loaded.version, loaded.value))
            else:
                self.kinds[loaded.name] = loaded

    @classmethod
    def discover(cls, group: str = GROUP) -> KindRegistry:
        """Load every entry point of ``group``; never raises."""
        loaded: list[LoadedKind] = []
        broken: list[BrokenKind] = []
        for entry_point in plugins.group_entry_points(group):
            obj, problem, origin = plugins.load(entry_point, check_kind, "kind")
            if obj is None:
                broken.append(BrokenKind(origin.name, problem or "unusable", *_where(origin)))
            else:
                loaded.append(LoadedKind(origin.name, obj, *_where(origin)))  # type: ignore[arg-type]
        registry = cls(loaded, broken)
        for item in registry.broken:
            log.warning("kind.broken", kind=item.name, distribution=item.distribution, reason=item.reason)
        return registry

    @classmethod
    def from_kinds(cls, kinds: Iterable[object], *, distribution: str | None = BUILTIN_DISTRIBUTION) -> KindRegistry:
        """A registry of these kind objects (classes or instances), without entry points."""
        loaded: list[LoadedKind] = []
        broken: list[BrokenKind] = []
        for item in kinds:
            origin = plugins.Origin(str(getattr(item, "name", "?")), distribution, None, repr(item))
            obj, problem = plugins.instantiate(origin, item, check_kind, "kind")
            if obj is None:
                broken.append(BrokenKind(origin.name, problem or "unusable", *_where(origin)))
            else:
                loaded.append(LoadedKind(origin.name, obj, *_where(origin)))  # type: ignore[arg-type]
        return cls(loaded, broken)

    def names(self) -> list[str]:
        """Installed kinds, built-ins first (http first of all), then plugins, each by name."""
        return sorted(self.kinds, key=lambda n: (not self.kinds[n].builtin, n != "http", n))

    def get(self, name: str) -> LoadedKind:
        """The kind called ``name``; :class:`UnknownKindError` if there is none."""
        try:
            return self.kinds[name]
        except KeyError:
            broken = next((b for b in self.broken if b.name == name), None)
            raise UnknownKindError(name, self.kinds, broken) from None

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def config_fields(self, name: str) -> list[ConfigField]:
        """The options of kind ``name``, in declaration order (see :mod:`uptimed.channels.schema`)."""
        return config_fields(self.get(name).kind.config_model)

    def title(self, name: str) -> str:
        """What people call kind ``name``: the title it declares, else its name in words."""
        loaded = self.kinds.get(name)
        declared = getattr(loaded.kind, "title", None) if loaded is not None else None
        return declared if isinstance(declared, str) and declared else words(name)

    def target_help(self, name: str) -> str | None:
        loaded = self.kinds.get(name)
        declared = getattr(loaded.kind, "target_help", None) if loaded is not None else None
        return declared if isinstance(declared, str) and declared else None

    def target_problem(self, name: str, target: str) -> str | None:
        """Why ``target`` does not suit kind ``name``, None when it does (or the kind does not say)."""
        judge = getattr(self.get(name).kind, "target_problem", None)
        if judge is None:
            return None if target.strip() else "a target is required"
        problem = judge(target)
        return problem if isinstance(problem, str) and problem else None

    def scheduled(self, name: str) -> bool:
        """Whether monitors of kind ``name`` are checked on a schedule (unknown kinds are: they report why)."""
        loaded = self.kinds.get(name)
        return loaded is None or loaded.scheduled


def _where(origin: plugins.Origin) -> tuple[str | None, str | None, str | None]:
    return origin.distribution, origin.version, origin.value


@functools.cache
def default_kinds() -> KindRegistry:
    """The installed kinds, discovered on first use and kept for the process."""
    return KindRegistry.discover()


async def run_probe(
    monitor: Monitor,
    *,
    region: str,
    session: aiohttp.ClientSession | None = None,
    scheduled_at_ms: int | None = None,
    kinds: KindRegistry | None = None,
    resolve: Resolve = resolve_any,
) -> CheckResult:
    """Check ``monitor`` once from ``region``, within ``monitor.timeout``.

    Never raises for a problem of the target: a failure is a DOWN result with
    an error class and a short message; so is a kind that is not installed,
    a plugin's bug and a plugin that overruns its timeout. ``session`` is the
    shared session from :func:`uptimed.probe.http.make_session`; ``resolve``
    is how checks find the addresses they may connect to (a target policy
    wraps it). Cancellation propagates.
    """
    context = CheckContext(monitor.id, region, session, scheduled_at_ms, resolve)
    try:
        loaded = (kinds or default_kinds()).get(monitor.kind)
    except UnknownKindError as exc:
        return context.down(ErrorClass.OTHER, str(exc))
    options = monitor.options
    if options is None:
        return context.down(ErrorClass.OTHER, f"the options of this {monitor.kind} monitor no longer fit its kind")
    try:
        if loaded.builtin:
            return await loaded.kind.check(monitor, options, context)
        async with asyncio.timeout(monitor.timeout + PLUGIN_GRACE_S):
            return await loaded.kind.check(monitor, options, context)
    except TargetRefused as exc:
        return context.down(ErrorClass.CONNECT, str(exc))  # it names the rule and the setting
    except TimeoutError:
        return context.down(ErrorClass.TIMEOUT, f"no result within {monitor.timeout:g} s")
    except Exception as exc:
        # A bug of ours or an error no kind anticipated: still a result, so the
        # monitor's state stays truthful, and a log line to fix it by.
        log.warning("probe.unexpected_error", monitor_id=monitor.id, kind=monitor.kind, exc_info=True)
        return context.down(ErrorClass.OTHER, f"{type(exc).__name__}: {exc}"[:2000])


__all__ = [
    "GROUP",
    "BrokenKind",
    "KindRegistry",
    "LoadedKind",
    "UnknownKindError",
    "check_kind",
    "default_kinds",
    "run_probe",
]
