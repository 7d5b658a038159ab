"""Escalation and acknowledgement of an open incident: which step is due when, and who has heard of it.

Pure, like the state machine it belongs to (:mod:`uptimed.evaluate.state`
calls it from ``evaluate``, ``tick`` and ``next_wake_ms``): no I/O, no clock.

A monitor's escalation policy is copied into the incident's state when the
incident opens (:func:`start`), so the steps of an incident and who they
reached are stored with the state, survive restarts and rebalances with it,
and a policy edited meanwhile changes the next incidents, not a running one.

- Step *n* is due at the incident's start plus its ``after_ms``; a step with
  ``after_ms`` 0 goes out with the DOWN change itself.
- After the last step, a policy with ``repeat_ms`` sends the last step again
  every ``repeat_ms`` (counted from the last step's own time, so a late firing
  does not shift the ones after it; repeats missed meanwhile are sent once).
- Acknowledged, nothing further is due; the acknowledgement itself goes to
  every integration reached so far (:attr:`Escalation.audience`), and so does
  the resolution.
- While a maintenance window holds the monitor, no step is due: planned work
  pages nobody. An incident still open and unacknowledged when the window
  ends starts its policy again from the first step, counted from the window's
  end (:func:`restart`; ``Escalation.since_ms``), so an outage that outlasts
  the work pages the on-call as a fresh one would.

Each step (and each repeat) of an incident is numbered, so the evaluator
derives one event id for it whoever fires it, and whenever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

AckVia = Literal["page", "api", "link"]
"""How an incident was acknowledged: on its page, through the API, or from a link in a notification."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a policy: whom to notify, how long after the incident's start."""

    after_ms: int
    integration_ids: tuple[int, ...]
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"after_ms": self.after_ms, "integration_ids": list(self.integration_ids), "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            after_ms=int(data["after_ms"]),
            integration_ids=tuple(int(i) for i in data.get("integration_ids") or ()),
            name=str(data.get("name") or ""),
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """An escalation policy as the state machine needs it: ordered steps, and the repeat of the last."""

    id: int
    name: str
    steps: tuple[Step, ...]
    repeat_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "steps": [step.to_json() for step in self.steps],
            "repeat_ms": self.repeat_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        repeat = data.get("repeat_ms")
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            steps=tuple(Step.from_json(step) for step in data.get("steps") or ()),
            repeat_ms=None if repeat is None else int(repeat),
        )


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Someone took the incident: when, who (a username, or the integration whose link was used), how."""

    at_ms: int
    by: str
    via: AckVia

    def to_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "by": self.by, "via": self.via}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Acknowledgement:
        return cls(at_ms=int(data["at_ms"]), by=str(data.get("by") or ""), via=ack_via(data.get("via")))


def ack_via(value: object) -> AckVia:
    """``value`` as an :data:`AckVia`; anything else (an older or a foreign value) reads as ``api``."""
    if value == "page":
        return "page"
    if value == "link":
        return "link"
    return "api"


LINK_ACTOR = "the link sent to {integration}"
"""Who acknowledged from an alert's link without being signed in: the integration the link went to."""


def acknowledged_by(by: str, via: str) -> str:
    """``"alice on its page"``, ``"bob through the API"``, ``"the link sent to Webhook #3"``."""
    if via == "link" and by.startswith(LINK_ACTOR.split("{", 1)[0]):
        return by  # the link says how already
    how = {"page": "on its page", "api": "through the API", "link": "from an alert's link"}.get(via)
    return f"{by} {how}" if how else by


@dataclass(frozen=True, slots=True)
class FiredStep:
    """A step that went out (or goes out now): what a notification about it says."""

    number: int
    """1-based position in the policy."""
    of: int
    """How many steps the policy has."""
    name: str
    after_ms: int
    integration_ids: tuple[int, ...]
    repeat: int = 0
    """0 for the step itself; 1, 2, ... for the repeats of the last step."""
    policy_id: int | None = None
    policy_name: str = ""
    since_ms: int | None = None
    """When the steps count from, if not the incident's opening: the end of a maintenance window (:func:`restart`)."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """The on-call side of an open incident: its policy's progress, who has heard of it, its acknowledgement."""

    policy: Policy | None = None
    """None: no policy; every routed integration hears of everything, as without escalation."""
    fired: int = 0
    """Steps sent so far (the DOWN change counts for a step due at once)."""
    repeats: int = 0
    """Repeats of the last step sent so far."""
    notified: tuple[int, ...] = ()
    """Integrations reached by the steps sent so far, in id order."""
    acknowledged: Acknowledgement | None = None
    since_ms: int | None = None
    """When the steps count from: None for the incident's opening, else the end of the maintenance window that
    held the incident (:func:`restart`)."""

    @property
    def audience(self) -> tuple[int, ...] | None:
        """Who hears of the incident's acknowledgement, reminders and resolution; None: the routed integrations."""
        return None if self.policy is None else self.notified

    def to_json(self) -> dict[str, Any]:
        data = {
            "policy": self.policy.to_json() if self.policy else None,
            "fired": self.fired,
            "repeats": self.repeats,
            "notified": list(self.notified),
            "acknowledged": self.acknowledged.to_json() if self.acknowledged else None,
        }
        if self.since_ms is not None:
            data["since_ms"] = self.since_ms
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Escalation:
        policy = data.get("policy")
        ack = data.get("acknowledged")
        return cls(
            policy=Policy.from_json(policy) if policy else None,
            fired=int(data.get("fired") or 0),
            repeats=int(data.get("repeats") or 0),
            notified=tuple(int(i) for i in data.get("notified") or ()),
            acknowledged=Acknowledgement.from_json(ack) if ack else None,
            since_ms=None if data.get("since_ms") is None else int(data["since_ms"]),
        )


def start(policy: Policy | None) -> tuple[Escalation, FiredStep | None]:
    """The escalation of an incident that opens now, and the step that goes out with its DOWN change, if any."""
    escalation = Escalation(policy=policy)
    if policy is None or not policy.steps or policy.steps[0].after_ms > 0:
        return escalation, None
    return _fire(escalation, policy, 0, repeat=0)


def restart(escalation: Escalation, at_ms: int, *, keep_notified: bool) -> tuple[Escalation, FiredStep | None]:
    """The escalation of an incident still open when the maintenance window that held it ends at ``at_ms``.

    Unacknowledged, its policy starts again from the first step, counted from
    ``at_ms``; the step that goes out at once (if any) is returned, for the
    "still down after maintenance" change. ``keep_notified``: whether those
    reached so far really heard (the incident was announced before the
    window) or only would have (it opened inside it, held). Acknowledged, or
    without a policy, it is returned as it was: someone has the incident.
    """
    if escalation.policy is None or escalation.acknowledged is not None:
        return escalation, None
    restarted = Escalation(
        policy=escalation.policy, notified=escalation.notified if keep_notified else (), since_ms=at_ms
    )
    if not escalation.policy.steps or escalation.policy.steps[0].after_ms > 0:
        return restarted, None
    return _fire(restarted, escalation.policy, 0, repeat=0)


def next_due_ms(escalation: Escalation | None, opened_at_ms: int) -> int | None:
    """When the next step (or repeat) is due, None when none will be."""
    if escalation is None or escalation.acknowledged is not None or escalation.policy is None:
        return None
    policy = escalation.policy
    origin = _origin(escalation, opened_at_ms)
    if escalation.fired < len(policy.steps):
        return origin + policy.steps[escalation.fired].after_ms
    if policy.repeat_ms is None or not policy.steps:
        return None
    return origin + policy.steps[-1].after_ms + (escalation.repeats + 1) * policy.repeat_ms


def fire_due(escalation: Escalation, opened_at_ms: int, now_ms: int) -> tuple[Escalation, list[FiredStep]]:
    """Every step due at ``now_ms`` (in order), and at most one repeat of the last, however many were missed."""
    fired: list[FiredStep] = []
    policy = escalation.policy
    while policy is not None and escalation.fired < len(policy.steps):
        due = next_due_ms(escalation, opened_at_ms)
        if due is None or due > now_ms:
            return escalation, fired
        escalation, step = _fire(escalation, policy, escalation.fired, repeat=0)
        fired.append(step)
    due = next_due_ms(escalation, opened_at_ms)
    if policy is None or policy.repeat_ms is None or due is None or due > now_ms:
        return escalation, fired
    last = _origin(escalation, opened_at_ms) + policy.steps[-1].after_ms
    repeat = (now_ms - last) // policy.repeat_ms  # the latest one due; those missed before it are not sent
    escalation, step = _fire(escalation, policy, len(policy.steps) - 1, repeat=repeat)
    fired.append(step)
    return escalation, fired


def acknowledge(escalation: Escalation | None, ack: Acknowledgement | None) -> Escalation:
    """The escalation with ``ack`` (None: acknowledgement withdrawn, the escalation goes on)."""
    return replace(escalation or Escalation(), acknowledged=ack)


def _origin(escalation: Escalation, opened_at_ms: int) -> int:
    """When the steps count from: the incident's opening, or the end of the window that restarted them."""
    return escalation.since_ms if escalation.since_ms is not None else opened_at_ms


def _fire(escalation: Escalation, policy: Policy, index: int, *, repeat: int) -> tuple[Escalation, FiredStep]:
    step = policy.steps[index]
    notified = tuple(sorted({*escalation.notified, *step.integration_ids}))
    if repeat:
        escalation = replace(escalation, repeats=repeat, notified=notified)
    else:
        escalation = replace(escalation, fired=index + 1, notified=notified)
    return escalation, FiredStep(
        number=index + 1,
        of=len(policy.steps),
        name=step.name,
        after_ms=step.after_ms,
        integration_ids=step.integration_ids,
        repeat=repeat,
        policy_id=policy.id,
        policy_name=policy.name,
        since_ms=escalation.since_ms,
    )
