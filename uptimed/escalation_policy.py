"""What an escalation policy is: named, ordered steps, each notifying some integrations after a delay.

The same models validate a policy written through the API or the pages
(:class:`PolicyFields`, integrations by id) and an ``[[escalation_policies]]``
table of the config file (:class:`PolicySpec`, integrations by their keys in
the file). Step *n* notifies its integrations ``after`` the incident's start
(0: at once, with the DOWN alert); each step comes later than the one before;
with ``repeat_every`` the last step goes out again that often until someone
acknowledges the incident.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from uptimed.durations import Duration, format_duration

MAX_STEPS = 10
MAX_DELAY_S = 7 * 86400.0
"""A step more than a week after the incident's start is refused."""
MIN_REPEAT_S = 1.0
MAX_REPEAT_S = 30 * 86400.0


def _delay(value: float) -> float:
    if value < 0:
        raise ValueError("must not be negative")
    if value > MAX_DELAY_S:
        raise ValueError("must be at most 7 days")
    return value


def _in_order(delays: list[float]) -> None:
    for number in range(1, len(delays)):
        if delays[number] <= delays[number - 1]:
            raise ValueError(
                f"step {number + 1} must come later than step {number} "
                f"({format_duration(delays[number])} is not after {format_duration(delays[number - 1])})"
            )


class StepFields(BaseModel):
    """One step: whom to notify (the owner's integration ids), how long after the incident's start."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100, description="what the step is called, e.g. 'on-call engineer'")
    after: Duration = Field(0.0, description="seconds after the incident's start, or '5m'; 0: at once")
    integrations: list[int] = Field(min_length=1, max_length=50, description="ids of the owner's integrations")

    _after = field_validator("after")(_delay)

    @field_validator("integrations")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("lists an integration twice")
        return value


class PolicyFields(BaseModel):
    """An escalation policy as the API and the pages write it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    steps: list[StepFields] = Field(min_length=1, max_length=MAX_STEPS)
    repeat_every: Duration | None = Field(
        None, description="send the last step again this often until acknowledged; none: once"
    )

    @field_validator("repeat_every")
    @classmethod
    def _repeat(cls, value: float | None) -> float | None:
        return _repeat_every(value)

    @field_validator("steps")
    @classmethod
    def _ordered(cls, value: list[StepFields]) -> list[StepFields]:
        _in_order([step.after for step in value])
        return value


def _repeat_every(value: float | None) -> float | None:
    if value is not None and value < MIN_REPEAT_S:
        raise ValueError(f"must be at least {MIN_REPEAT_S:g} s")
    if value is not None and value > MAX_REPEAT_S:
        raise ValueError("must be at most 30 days")
    return value


class StepSpec(BaseModel):
    """A step of an ``[[escalation_policies]]`` table: its integrations by their keys in the file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)
    after: Duration = Field(0.0, description="seconds after the incident's start, or '5m'")
    integrations: list[str] = Field(min_length=1, max_length=50, description="keys of the owner's [[integrations]]")

    _after = field_validator("after")(_delay)


class PolicySpec(BaseModel):
    """An ``[[escalation_policies]]`` table of the TOML file; monitors name it by ``key``."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Field(min_length=1, max_length=64, description="username of the owner")
    key: str = Field(min_length=1, max_length=200, description="stable identity; monitors use it")
    name: str = Field(min_length=1, max_length=100)
    steps: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)
    repeat_every: Duration | None = None

    @field_validator("repeat_every")
    @classmethod
    def _repeat(cls, value: float | None) -> float | None:
        return _repeat_every(value)

    @field_validator("steps")
    @classmethod
    def _ordered(cls, value: list[StepSpec]) -> list[StepSpec]:
        _in_order([step.after for step in value])
        return value
