"""Finding channels: entry points in group ``uptimed.channels``, loaded once.

An entry point names a channel class (instantiated without arguments) or a
channel instance. One that fails to import, to instantiate or to look like a
:class:`~uptimed.channels.base.Channel` is recorded in ``broken`` with its
distribution and the reason, and the rest work on: a broken plugin never
takes the daemon down.

Configs: :meth:`ChannelRegistry.validate_config` turns raw JSON into the
channel's model; :func:`storable_config` gives the JSON to keep in the
database (secrets in clear) and :func:`redacted_config` the JSON to show
(secrets as ``…`` plus their last four characters). Each config's keys come
from :mod:`uptimed.channels.schema`.

Besides its ``name``, ``config_model`` and ``send``, a channel may declare a
``title`` (what people call it, e.g. ``"ntfy"``; default: its name in words)
and an ``icon`` (SVG path data on a 24x24 grid, drawn as strokes), which the
pages show.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any, cast

import pydantic_core
import structlog
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from uptimed import plugins
from uptimed.channels.base import Channel
from uptimed.channels.schema import ConfigField, config_fields, words
from uptimed.rules.errors import Problem, dotted, problems_of

__all__ = [
    "GROUP",
    "BrokenChannel",
    "ChannelRegistry",
    "ConfigField",
    "InvalidConfigError",
    "LoadedChannel",
    "UnknownChannelError",
    "check_channel",
    "default_registry",
    "redact_secret",
    "redacted_config",
    "storable_config",
]

GROUP = "uptimed.channels"
log = structlog.get_logger()


@dataclass(frozen=True)
class LoadedChannel:
    """A working channel and where it came from."""

    name: str
    channel: Channel
    distribution: str | None = None
    version: str | None = None
    value: str | None = None
    """The entry point's target, e.g. ``uptimed.channels.slack:SlackChannel``."""


@dataclass(frozen=True)
class BrokenChannel:
    """An entry point that could not be used, and why."""

    name: str
    reason: str
    distribution: str | None = None
    version: str | None = None
    value: str | None = None


class UnknownChannelError(LookupError):
    """No channel of that type is installed (or it is broken)."""

    def __init__(self, name: str, available: Iterable[str], broken: BrokenChannel | None = None) -> None:
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) or "none"
        if broken is not None:
            message = f"channel type {name!r} is installed but broken ({broken.reason}); available: {listing}"
        else:
            message = f"unknown channel type {name!r}; available: {listing}"
        super().__init__(message)


class InvalidConfigError(ValueError):
    """A config that does not fit its channel's model. Never repeats the values given."""

    def __init__(self, channel: str, problems: Sequence[Problem]) -> None:
        self.channel = channel
        self.problems = tuple(problems)
        """Each with its location inside the config: ``("headers", "X-Token")``."""
        self.errors = [{"loc": dotted(p.loc), "msg": p.msg, "type": p.type} for p in self.problems]
        """The same as dicts, locations written out: ``[{"loc": "webhookUrl", "msg": "...", "type": "..."}]``."""
        super().__init__(f"invalid {channel} config: {'; '.join(_said(p) for p in self.problems)}")

    @classmethod
    def from_validation(cls, channel: str, exc: ValidationError) -> InvalidConfigError:
        return cls(channel, problems_of(exc))


def _said(problem: Problem) -> str:
    return f"{dotted(problem.loc)}: {problem.msg}" if problem.loc else problem.msg


def check_channel(obj: object) -> str | None:
    """Why ``obj`` is not a usable channel, or ``None`` when it is."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return "has no str 'name'"
    model = getattr(obj, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "its 'config_model' is not a pydantic BaseModel subclass"
    send = getattr(obj, "send", None)
    if send is None or not inspect.iscoroutinefunction(send):
        return "has no 'async def send(self, notification)'"
    return None


class ChannelRegistry:
    """The channels this process can deliver through, by type name."""

    def __init__(self, channels: Iterable[LoadedChannel] = (), broken: Iterable[BrokenChannel] = ()) -> None:
        self.channels: dict[str, LoadedChannel] = {}
        self.broken: list[BrokenChannel] = list(broken)
        for loaded in channels:
            if loaded.name in self.channels:
                first = self.channels[loaded.name]
                self.broken.append(
                    BrokenChannel(
                        loaded.name,
                        f"the name is already taken by {first.distribution or first.value}",
                        loaded.distribution,
                        loaded.version,
                        loaded.value,
                    )
                )
            else:
                self.channels[loaded.name] = loaded

    @classmethod
    def discover(cls, group: str = GROUP) -> ChannelRegistry:
        """Load every entry point of ``group``; never raises."""
        loaded: list[LoadedChannel] = []
        broken: list[BrokenChannel] = []
        for entry_point in plugins.group_entry_points(group):
            result = _load(entry_point)
            if isinstance(result, LoadedChannel):
                loaded.append(result)
            else:
                broken.append(result)
        registry = cls(loaded, broken)
        for item in registry.broken:
            log.warning(
                "channel.broken",
                channel=item.name,
                distribution=item.distribution,
                version=item.version,
                reason=item.reason,
            )
        return registry

    @classmethod
    def from_channels(cls, channels: Iterable[object]) -> ChannelRegistry:
        """A registry of these channel objects (classes or instances), without entry points."""
        loaded: list[LoadedChannel] = []
        broken: list[BrokenChannel] = []
        for item in channels:
            value = f"{getattr(item, '__module__', '?')}:{getattr(item, '__qualname__', type(item).__qualname__)}"
            result = _instantiate(getattr(item, "name", value), value, item, None, None)
            if isinstance(result, LoadedChannel):
                loaded.append(result)
            else:
                broken.append(result)
        return cls(loaded, broken)

    def names(self) -> list[str]:
        return sorted(self.channels)

    def get(self, name: str) -> Channel:
        """The channel of type ``name``; :class:`UnknownChannelError` if there is none."""
        try:
            return self.channels[name].channel
        except KeyError:
            broken = next((b for b in self.broken if b.name == name), None)
            raise UnknownChannelError(name, self.channels, broken) from None

    def __contains__(self, name: object) -> bool:
        return name in self.channels

    def validate_config(self, name: str, raw: Mapping[str, Any]) -> BaseModel:
        """``raw`` (an integration's config JSON) as the model of channel ``name``.

        Raises :class:`UnknownChannelError` or :class:`InvalidConfigError`;
        neither message repeats a value it was given.
        """
        model = self.get(name).config_model
        try:
            return model.model_validate(dict(raw))
        except ValidationError as exc:
            raise InvalidConfigError.from_validation(name, exc) from None

    def config_fields(self, name: str) -> list[ConfigField]:
        """The keys of channel ``name``'s config, in declaration order (see :mod:`uptimed.channels.schema`)."""
        return config_fields(self.get(name).config_model)

    def title(self, name: str) -> str:
        """What people call channel ``name``: the title it declares, else its name in words (``pager_duty`` -> "Pager duty").

        A type that is not installed (an integration of a removed plugin) gets its name in words too.
        """
        loaded = self.channels.get(name)
        declared = getattr(loaded.channel, "title", None) if loaded is not None else None
        return declared if isinstance(declared, str) and declared else words(name)

    def icon(self, name: str) -> tuple[str, ...]:
        """The SVG path data the channel declares as its ``icon`` (a 24x24 grid, drawn as strokes); () if none."""
        loaded = self.channels.get(name)
        declared = getattr(loaded.channel, "icon", None) if loaded is not None else None
        if isinstance(declared, str):
            return (declared,)
        if isinstance(declared, tuple | list) and all(isinstance(d, str) for d in declared):
            return tuple(declared)
        return ()


@functools.cache
def default_registry() -> ChannelRegistry:
    """The installed channels, discovered on first use and kept for the process."""
    return ChannelRegistry.discover()


def storable_config(config: BaseModel) -> dict[str, Any]:
    """JSON for the database: every value, secrets in clear. Never log it."""
    return _jsonable(config, _reveal)


def redacted_config(config: BaseModel) -> dict[str, Any]:
    """JSON to show users and logs: each secret as ``…`` plus its last 4 characters."""
    return _jsonable(config, redact_secret)


def redact_secret(value: str) -> str:
    """``"…cdef"``; secrets shorter than 12 characters are masked whole (``"********"``)."""
    return f"…{value[-4:]}" if len(value) >= 12 else "********"


def _reveal(value: str) -> str:
    return value


def _jsonable(config: BaseModel, secret: Callable[[str], str]) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return secret(value.get_secret_value())
        if isinstance(value, SecretBytes):
            return secret(value.get_secret_value().decode(errors="replace"))
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [walk(v) for v in value]
        return value

    # Python mode keeps SecretStr objects, so the secrets can be told apart.
    dumped = config.model_dump(mode="python", by_alias=True)
    jsonable: dict[str, Any] = pydantic_core.to_jsonable_python(walk(dumped))
    return jsonable


def _load(entry_point: EntryPoint) -> LoadedChannel | BrokenChannel:
    obj, problem, origin = plugins.load(entry_point, check_channel, "channel")
    return _record(origin, obj, problem)


def _instantiate(
    name: str, value: str, obj: object, distribution: str | None, version: str | None
) -> LoadedChannel | BrokenChannel:
    origin = plugins.Origin(name, distribution, version, value)
    return _record(origin, *plugins.instantiate(origin, obj, check_channel, "channel"))


def _record(origin: plugins.Origin, obj: object | None, problem: str | None) -> LoadedChannel | BrokenChannel:
    if obj is None:
        return BrokenChannel(origin.name, problem or "unusable", origin.distribution, origin.version, origin.value)
    channel = cast(Channel, obj)  # plugins.instantiate checked it with check_channel
    return LoadedChannel(origin.name, channel, origin.distribution, origin.version, origin.value)
