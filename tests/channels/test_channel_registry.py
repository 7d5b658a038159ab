"""Channel discovery through real entry points, broken plugins, and config (de)serialisation."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from uptimed.channels.registry import (
    ChannelRegistry,
    InvalidConfigError,
    UnknownChannelError,
    redacted_config,
    storable_config,
)
from uptimed.channels.slack import SlackChannel
from uptimed.channels.telegram import TelegramChannel
from uptimed.channels.webhook import WebhookChannel

BUILT_IN = {"email", "webhook", "slack", "discord", "telegram"}


def test_built_in_channels_are_found_through_entry_points() -> None:
    registry = ChannelRegistry.discover()

    assert set(registry.names()) >= BUILT_IN
    version = importlib.metadata.version("uptimed")
    for name in BUILT_IN:
        loaded = registry.channels[name]
        assert loaded.channel.name == name
        assert (loaded.distribution, loaded.version) == ("uptimed", version)
        assert loaded.value == f"uptimed.channels.{name}:{type(loaded.channel).__name__}"
    assert not [b for b in registry.broken if b.distribution == "uptimed"]


def write_distribution(
    root: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """A minimal installed distribution: a .dist-info with METADATA and entry_points.txt, plus modules."""
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[uptimed.channels]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_PLUGIN = """
    from pydantic import BaseModel

    class PagerConfig(BaseModel):
        number: str

    class Pager:
        name = "pager"
        config_model = PagerConfig

        async def send(self, notification):
            pass

    INSTANCE = Pager()
"""


def test_broken_plugins_are_reported_and_the_rest_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(
        tmp_path,
        "acme_channels",
        "2.3.4",
        {
            "pager": "acme_good:INSTANCE",
            "missing": "acme_does_not_exist:Channel",
            "explodes": "acme_explodes:Channel",
            "notachannel": "acme_bad:NotAChannel",
            "syncsend": "acme_bad:SyncSend",
            "badinit": "acme_bad:NeedsArgs",
            "misnamed": "acme_bad:Misnamed",
        },
        {
            "acme_good": GOOD_PLUGIN,
            "acme_explodes": "raise RuntimeError('plugin bug at import')\n",
            "acme_bad": """
                from pydantic import BaseModel

                class NotAChannel:
                    pass

                class SyncSend:
                    name = "syncsend"
                    config_model = BaseModel

                    def send(self, notification):
                        pass

                class NeedsArgs:
                    name = "badinit"
                    config_model = BaseModel

                    def __init__(self, token):
                        self.token = token

                    async def send(self, notification):
                        pass

                class Misnamed:
                    name = "something-else"
                    config_model = BaseModel

                    async def send(self, notification):
                        pass
            """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    registry = ChannelRegistry.discover()

    assert set(registry.names()) >= BUILT_IN
    pager = registry.channels["pager"]
    assert (pager.distribution, pager.version) == ("acme_channels", "2.3.4")
    broken = {b.name: b for b in registry.broken if b.distribution == "acme_channels"}
    assert set(broken) == {"missing", "explodes", "notachannel", "syncsend", "badinit", "misnamed"}
    assert all(b.version == "2.3.4" for b in broken.values())
    assert "ModuleNotFoundError" in broken["missing"].reason
    assert "RuntimeError: plugin bug at import" in broken["explodes"].reason
    assert "name" in broken["notachannel"].reason
    assert "async def send" in broken["syncsend"].reason
    assert "could not be created" in broken["badinit"].reason
    assert "something-else" in broken["misnamed"].reason
    with pytest.raises(UnknownChannelError, match="installed but broken"):
        registry.get("explodes")


def test_from_channels_builds_a_registry_without_entry_points() -> None:
    registry = ChannelRegistry.from_channels([SlackChannel, WebhookChannel(), object()])

    assert registry.names() == ["slack", "webhook"]
    assert len(registry.broken) == 1 and "not a channel" in registry.broken[0].reason


def test_a_second_channel_with_a_taken_name_is_broken() -> None:
    class OtherSlack(SlackChannel):
        pass

    registry = ChannelRegistry.from_channels([SlackChannel, OtherSlack])

    assert type(registry.get("slack")) is SlackChannel
    assert "already taken" in registry.broken[0].reason


def test_unknown_type_lists_the_available_ones() -> None:
    registry = ChannelRegistry.from_channels([SlackChannel, WebhookChannel])

    with pytest.raises(UnknownChannelError) as caught:
        registry.validate_config("teams", {})
    assert str(caught.value) == "unknown channel type 'teams'; available: slack, webhook"


def test_storable_config_reveals_and_round_trips() -> None:
    registry = ChannelRegistry.from_channels([WebhookChannel])
    raw = {
        "webhookUrl": "https://hooks.example.com/T0/abcdef0123456789",
        "headers": {"Authorization": "Bearer 0123456789abcdef"},
        "secret": "s3cr3t-signing-key",
    }

    config = registry.validate_config("webhook", raw)
    stored = storable_config(config)

    assert stored == raw | {"timeout": 10.0}
    assert registry.validate_config("webhook", stored) == config


def test_redacted_config_shows_only_the_last_four_characters_of_long_secrets() -> None:
    registry = ChannelRegistry.from_channels([WebhookChannel, TelegramChannel])
    webhook = registry.validate_config(
        "webhook",
        {
            "webhookUrl": "https://hooks.example.com/T0/abcdef",
            "headers": {"X-Key": "short"},
            "secret": "0123456789abcdef",
        },
    )
    telegram = registry.validate_config(
        "telegram", {"botToken": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDcdef", "chatId": -42}
    )

    assert redacted_config(webhook) == {
        "webhookUrl": "…cdef",
        "headers": {"X-Key": "********"},
        "secret": "…cdef",
        "timeout": 10.0,
    }
    assert redacted_config(telegram) == {
        "botToken": "…cdef",
        "chatId": -42,
        "messageThreadId": None,
        "disableNotification": False,
    }


def test_config_fields_describe_each_key() -> None:
    registry = ChannelRegistry.from_channels([WebhookChannel])

    fields = {f.name: f for f in registry.config_fields("webhook")}

    assert list(fields) == ["webhookUrl", "headers", "secret", "timeout"]
    assert fields["webhookUrl"].required and fields["webhookUrl"].secret and fields["webhookUrl"].type == "string"
    assert fields["headers"].secret and not fields["headers"].required and fields["headers"].default == {}
    assert fields["secret"].secret and fields["secret"].default is None
    assert (fields["timeout"].type, fields["timeout"].default, fields["timeout"].secret) == ("number", 10.0, False)


def test_invalid_config_errors_are_structured() -> None:
    registry = ChannelRegistry.from_channels([SlackChannel])

    with pytest.raises(InvalidConfigError) as caught:
        registry.validate_config("slack", {"webhookUrl": 5, "channel": "#ops"})
    assert sorted(e["loc"] for e in caught.value.errors) == ["channel", "webhookUrl"]
    assert all("input" not in e for e in caught.value.errors)


def test_the_built_in_channels_satisfy_the_protocol() -> None:
    from uptimed.channels.base import Channel

    built_in = [c for c in ChannelRegistry.discover().channels.values() if c.distribution == "uptimed"]

    assert len(built_in) == len(BUILT_IN)
    assert all(isinstance(loaded.channel, Channel) for loaded in built_in)


def test_a_channel_may_name_and_draw_itself() -> None:
    from pydantic import BaseModel

    class Config(BaseModel):
        topic: str

    class Bell:
        name = "bell_ring"
        title = "BellRing"
        icon = ("M6 16v-5a6 6 0 0 1 12 0v5", "M10 20a2 2 0 0 0 4 0")
        config_model = Config

        async def send(self, notification: object) -> None:
            return None

    class Plain(Bell):
        name = "pager_duty"
        title = ""  # no title: the name in words
        icon = "M12 2v4"  # one path

    registry = ChannelRegistry.from_channels([Bell, Plain, WebhookChannel])

    assert (registry.title("bell_ring"), registry.icon("bell_ring")) == ("BellRing", Bell.icon)
    assert (registry.title("pager_duty"), registry.icon("pager_duty")) == ("Pager duty", ("M12 2v4",))
    assert (registry.title("webhook"), registry.icon("webhook")) == ("Webhook", ())
    assert (registry.title("gone-away"), registry.icon("gone-away")) == ("Gone away", ())
