"""The rules layer on its own: locations, the region and quorum rule, a monitor's bounds. Pure, no service."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from uptimed.monitor import MonitorFields
from uptimed.rules import monitors as monitor_rules
from uptimed.rules.errors import Across, Invalid, Located, Problem, dotted, problems_of
from uptimed.rules.regions import quorum_for

CLUSTER = ["eu", "us", "ap"]


def fields(**overrides: Any) -> MonitorFields:
    return MonitorFields.model_validate({"name": "shop", "target": "https://shop.example/", **overrides})


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        (("monitors", 0, "http", "method"), "monitors[0].http.method"),
        (("config", "headers", "X-Token"), "config.headers.X-Token"),
        (("tags", 2), "tags[2]"),
        ((3,), "[3]"),
        ((), ""),
    ],
)
def test_one_way_to_write_a_location(loc: tuple[str | int, ...], text: str) -> None:
    assert dotted(loc) == text


class Window(BaseModel):
    start: int
    end: int

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.end < self.start:
            raise Across("end", "end is before start")
        return self


class Plan(BaseModel):
    windows: list[Window]

    @model_validator(mode="after")
    def _unique(self) -> Plan:
        if len({w.start for w in self.windows}) < len(self.windows):
            raise Located(("windows", len(self.windows) - 1, "start"), "two windows start together")
        return self


def test_pydantic_errors_keep_their_structure() -> None:
    with pytest.raises(ValidationError) as across:
        Plan.model_validate({"windows": [{"start": 5, "end": 1}]})
    assert problems_of(across.value) == [Problem(("windows", 0), "end is before start", "value_error", ("end",))]

    with pytest.raises(ValidationError) as located:
        Plan.model_validate({"windows": [{"start": 1, "end": 2}, {"start": 1, "end": 3}]})
    assert problems_of(located.value) == [Problem(("windows", 1, "start"), "two windows start together")]

    with pytest.raises(ValidationError) as plain:
        Plan.model_validate({"windows": [{"start": "soon", "end": 1}]})
    (problem,) = problems_of(plain.value)
    assert (problem.loc, problem.type) == (("windows", 0, "start"), "int_parsing")
    assert "soon" not in problem.msg


@pytest.mark.parametrize(
    ("quorum", "regions", "expected"),
    [
        (None, ["a"], 1),
        (None, ["a", "b"], 2),
        (None, ["a", "b", "c"], 2),
        (2, ["a", "b", "c"], 2),
        (5, ["a", "b"], 2),
        (None, [], 1),
    ],
)
def test_the_quorum_is_the_monitors_capped_at_its_regions_or_a_majority(
    quorum: int | None, regions: list[str], expected: int
) -> None:
    monitor = fields(quorum=quorum)
    assert quorum_for(monitor, regions) == expected


@pytest.mark.parametrize(
    ("overrides", "loc", "message"),
    [
        ({"regions": ["eu", "mars"]}, ("regions",), "unknown region 'mars'; configured: eu, us, ap"),
        ({"quorum": 4}, ("quorum",), "quorum 4 is more than its 3 regions"),
        ({"regions": ["eu", "us"], "quorum": 3}, ("quorum",), "quorum 3 is more than its 2 regions"),
        ({"repeat_interval": "31d"}, ("repeat_interval",), "must be at most 30 days"),
    ],
)
def test_what_the_cluster_refuses_is_named_by_its_field(
    overrides: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        monitor_rules.checked(fields(**overrides), CLUSTER)
    assert [(p.loc, p.msg) for p in caught.value.problems] == [(loc, message)]


def test_what_the_cluster_allows_passes_unchanged() -> None:
    allowed = fields(regions=["eu", "us"], quorum=2, repeat_interval="30d")
    assert monitor_rules.checked(allowed, CLUSTER) is allowed


def test_a_form_learns_which_field_a_rule_across_fields_is_about() -> None:
    with pytest.raises(Invalid) as caught:
        monitor_rules.validated({"name": "m", "target": "ftp://x/", "interval": "5s", "timeout": "10s"}, CLUSTER)
    (problem,) = caught.value.problems
    assert (problem.loc, problem.about) == ((), ("timeout",))
    assert problem.msg == "timeout (10 s) is longer than interval (5 s)"
