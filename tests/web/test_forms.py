"""Integration forms from a channel's config schema, and posted forms read back: pure, no service."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from uptimed.channels.base import Notification, Secret
from uptimed.channels.registry import ChannelRegistry, default_registry
from uptimed.rules.errors import Invalid as InvalidInput
from uptimed.rules.integrations import validated
from uptimed.web.forms import (
    ChannelForm,
    channel_form,
    entered,
    field_errors,
    parse_lines,
    read_config,
    summary,
)
from uptimed.web.templates import environment


class Speed(StrEnum):
    FAST = "fast"
    GENTLE = "gentle"


class PagerConfig(BaseModel):
    """A plugin's config, with one field of every kind the form knows."""

    model_config = ConfigDict(extra="forbid")

    apiKey: Secret = Field(description="the integration key")
    region: Literal["eu", "us"] = Field(description="where your account lives")
    retries: int = Field(3, ge=0, le=10, description="how often the service retries")
    ratio: float | None = Field(None, gt=0, le=1)
    loud: bool = Field(True, description="page with a sound")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    tags: list[str] = Field(default_factory=list)
    speed: Speed = Speed.FAST
    target: int | str = Field(description="a service id or name")
    limits: dict[str, int] = Field(default_factory=dict)
    on_call_team: str | None = Field(None, title="On-call team", max_length=40)

    @model_validator(mode="after")
    def _no_loud_gentle(self) -> PagerConfig:
        if self.loud and self.speed is Speed.GENTLE:
            raise ValueError("a gentle page cannot be loud")
        return self


class PagerChannel:
    name: ClassVar[str] = "pager_duty"
    config_model: ClassVar[type[BaseModel]] = PagerConfig

    async def send(self, notification: Notification) -> None:
        return None


@pytest.fixture(scope="module")
def registry() -> ChannelRegistry:
    return ChannelRegistry.from_channels([PagerChannel])


@pytest.fixture(scope="module")
def form(registry: ChannelRegistry) -> ChannelForm:
    return channel_form(registry, "pager_duty")


def test_a_plugin_channel_gets_a_field_per_config_key_in_declaration_order(form: ChannelForm) -> None:
    assert form.title == "Pager duty"
    assert [(f.key, f.label, f.control, f.required) for f in form.fields] == [
        ("apiKey", "API key", "password", True),
        ("region", "Region", "select", True),
        ("retries", "Retries", "number", False),
        ("ratio", "Ratio", "number", False),
        ("loud", "Loud", "checkbox", False),
        ("headers", "Headers", "mapping", False),
        ("tags", "Tags", "list", False),
        ("speed", "Speed", "select", False),
        ("target", "Target", "text", True),
        ("limits", "Limits", "json", False),
        ("on_call_team", "On-call team", "text", False),
    ]


def test_fields_carry_their_bounds_options_defaults_and_help(form: ChannelForm) -> None:
    api_key, region, retries, ratio, loud, *_ = form.fields
    speed, team = form.field("speed"), form.field("on_call_team")
    assert api_key.secret and api_key.name == "pager_duty.apiKey" and api_key.help == "The integration key."
    assert api_key.input_id == "field-pager_duty-apiKey" and api_key.error_id == "pager_duty-apiKey-error"
    assert [o.text for o in region.options] == ["eu", "us"]
    assert (retries.minimum, retries.maximum, retries.integer, retries.step, retries.initial) == (0, 10, True, "1", "3")
    assert (ratio.minimum, ratio.maximum, ratio.integer, ratio.step, ratio.initial) == (None, 1, False, "any", "")
    assert loud.initial == "on"
    assert speed and [o.text for o in speed.options] == ["fast", "gentle"] and speed.initial == "fast"
    assert team and team.max_length == 40


def test_built_in_channels_get_the_fields_the_dialog_needs() -> None:
    webhook = channel_form(default_registry(), "webhook")
    url, headers, secret, timeout = webhook.fields
    assert (url.label, url.control, url.required) == ("Webhook URL", "password", True)
    assert (headers.control, headers.secret) == ("mapping", True)
    assert secret.control == "password" and not secret.required
    assert (timeout.control, timeout.maximum, timeout.initial) == ("number", 120, "10")
    telegram = channel_form(default_registry(), "telegram")
    assert [(f.label, f.control) for f in telegram.fields] == [
        ("Bot token", "password"),
        ("Chat ID", "text"),
        ("Message thread ID", "number"),
        ("Disable notification", "checkbox"),
    ]


def test_a_posted_form_reads_back_into_a_config(form: ChannelForm, registry: ChannelRegistry) -> None:
    posted = {
        "pager_duty.apiKey": [" key-0123456789abcdef "],
        "pager_duty.region": ["us"],
        "pager_duty.retries": ["5"],
        "pager_duty.ratio": ["0.5"],
        "pager_duty.headers": ["Authorization: Bearer t0ken\n\nX-Team:  ops  "],
        "pager_duty.tags": ["prod\n\n web \n"],
        "pager_duty.speed": ["fast"],
        "pager_duty.target": ["-1001"],
        "pager_duty.limits": ['{"per_minute": 3}'],
        "pager_duty.on_call_team": [""],
        "webhook.webhookUrl": ["https://someone.else/"],
    }

    read = read_config(form, posted)

    assert read.errors == {}
    assert read.config == {
        "apiKey": "key-0123456789abcdef",
        "region": "us",
        "retries": 5,
        "ratio": 0.5,
        "loud": False,  # a checkbox left unticked is not sent at all
        "headers": {"Authorization": "Bearer t0ken", "X-Team": "ops"},
        "tags": ["prod", "web"],
        "speed": "fast",
        "target": "-1001",
        "limits": {"per_minute": 3},
    }
    assert validated(registry, "pager_duty", read.config)["apiKey"] == "key-0123456789abcdef"
    ticked = read_config(form, {"pager_duty.loud": ["on"]})
    assert ticked.config == {"loud": True}  # empty fields are left out: the model's defaults apply


def test_what_the_form_cannot_read_is_named_with_the_field_and_line(form: ChannelForm) -> None:
    read = read_config(
        form,
        {
            "pager_duty.retries": ["three"],
            "pager_duty.ratio": ["nan"],
            "pager_duty.region": ["mars"],
            "pager_duty.headers": ["X-Team: ops\nAuthorization Bearer x"],
            "pager_duty.limits": ["{per_minute: 3}"],
        },
    )

    assert read.errors == {
        "pager_duty.retries": "must be a whole number",
        "pager_duty.ratio": "must be a number",
        "pager_duty.region": "choose one of the listed options",
        "pager_duty.headers": "line 2: expected “Name: value”",
        "pager_duty.limits": "is not valid JSON (line 1: Expecting property name enclosed in double quotes)",
    }
    assert "retries" not in read.config


def test_header_lines_parse_and_bad_lines_are_named() -> None:
    assert parse_lines("A: 1\n\n  B :two: parts \n") == {"A": "1", "B": "two: parts"}
    assert parse_lines("") == {}
    for text, message in [
        ("A: 1\nB", "line 2: expected “Name: value”"),
        (": no name", "line 1: expected “Name: value”"),
        ("A: 1\nB: 2\nA: 3", "line 3: “A” is given twice"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_lines(text)


def test_the_models_complaints_land_on_their_fields(form: ChannelForm, registry: ChannelRegistry) -> None:
    raw = read_config(
        form,
        {
            "pager_duty.region": ["eu"],
            "pager_duty.retries": ["11"],
            "pager_duty.target": ["svc"],
            "pager_duty.speed": ["gentle"],
            "pager_duty.loud": ["on"],
        },
    ).config
    with pytest.raises(InvalidInput) as caught:
        validated(registry, "pager_duty", raw)

    assert field_errors(form, caught.value.problems) == {
        "pager_duty.apiKey": "is required",
        "pager_duty.retries": "must be at most 10",
    }
    loud = {**raw, "apiKey": "k", "retries": 1}
    with pytest.raises(InvalidInput) as caught:
        validated(registry, "pager_duty", loud)
    assert field_errors(form, caught.value.problems) == {"pager_duty": "a gentle page cannot be loud"}


def test_what_is_shown_again_never_holds_a_secret(form: ChannelForm) -> None:
    shown = entered(
        form,
        {
            "pager_duty.apiKey": ["key-0123456789abcdef"],
            "pager_duty.retries": ["4"],
            "pager_duty.loud": ["on"],
            "pager_duty.target": ["svc"],
        },
    )
    assert "pager_duty.apiKey" not in shown
    assert shown["pager_duty.retries"] == "4" and shown["pager_duty.loud"] == "on"
    assert shown["pager_duty.target"] == "svc" and shown["pager_duty.ratio"] == ""


def test_a_summary_is_one_line_in_the_forms_order(form: ChannelForm) -> None:
    masked = {
        "target": "svc",
        "apiKey": "…cdef",
        "retries": 3.0,
        "loud": True,
        "headers": {"X-B": "…", "A": "…"},
        "ratio": None,
        "tags": [],
        "zone": "eu-1",
    }
    assert summary(form, masked) == "API key: …cdef · Retries: 3 · Loud · Headers: A, X-B · Target: svc · Zone: eu-1"
    assert summary(None, {"routingKey": "********"}) == "Routing key: ********"
    assert len(summary(form, {"target": "x" * 500})) == 160


@pytest.mark.usefixtures("installed_plugins")  # ntfy names itself
def test_channel_titles() -> None:
    channel_title = ChannelRegistry.discover().title
    assert [channel_title(n) for n in ("webhook", "ntfy", "email", "pager_duty", "my-hook")] == [
        "Webhook",
        "ntfy",
        "Email",
        "Pager duty",
        "My hook",
    ]


def test_the_fieldset_renders_labelled_controls_described_by_their_help_and_errors(form: ChannelForm) -> None:
    template = environment.from_string(
        '{% from "_integration_fields.html" import channel_fieldset %}{{ channel_fieldset(form, values, errors, chosen) }}'
    )
    values = {"pager_duty.retries": "4", "pager_duty.loud": "", "pager_duty.apiKey": "never-shown-key"}
    html = template.render(form=form, values=values, errors={"pager_duty.retries": "too many"}, chosen="pager_duty")

    assert "<legend>Pager duty settings</legend>" in html
    assert (
        '<input type="password" autocomplete="off" spellcheck="false" id="field-pager_duty-apiKey" '
        'name="pager_duty.apiKey" aria-describedby="field-pager_duty-apiKey-help" aria-required="true">'
    ) in html
    assert (
        '<label for="field-pager_duty-apiKey">API key<span class="required" aria-hidden="true"> *</span></label>'
        in html
    )
    assert "never-shown-key" not in html
    assert (
        'id="field-pager_duty-retries" name="pager_duty.retries" '
        'aria-describedby="field-pager_duty-retries-help pager_duty-retries-error" aria-invalid="true" '
        'min="0" max="10" value="4">'
    ) in html
    assert '<p class="field-error" id="pager_duty-retries-error">too many</p>' in html
    assert 'name="pager_duty.loud" aria-describedby="field-pager_duty-loud-help"> Loud</label>' in html  # unticked
    assert '<option value="us">us</option>' in html and '<option value="">(default: fast)</option>' in html
    assert 'placeholder="Name: value"' in html
    other = template.render(form=form, values={}, errors={"pager_duty.retries": "too many"}, chosen="webhook")
    assert "too many" not in other  # errors belong to the chosen type's fieldset only
