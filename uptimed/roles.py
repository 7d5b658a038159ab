"""What one ``uptimed run`` process does: every role by default, or those ``--parts`` names.

A single process on a small machine runs everything. To give each role its
own processes (or cores), run several: ``uptimed run --parts probe`` where
the checks are made, ``--parts evaluate,notify`` beside them, ``--parts api``
behind the load balancer. Processes of a role share its work through Redis
and Kafka's consumer groups, as identical processes do.
"""

from __future__ import annotations

from uptimed.supervisor import Part

ROLES = {
    "probe": ("monitors", "scheduler:", "probe:", "forwarder:"),
    "evaluate": ("monitors", "evaluator"),
    "notify": ("notifier", "dispatcher"),
    "api": ("api",),
    "retention": ("retention",),
}
"""What ``uptimed run --parts`` chooses from: each role and the parts (by name or name prefix) it runs."""


def parts_of(roles: frozenset[str], parts: list[Part]) -> list[Part]:
    """The parts the chosen roles need, in their order (a part two roles need runs once)."""
    names = tuple(name for role in sorted(roles) for name in ROLES[role])
    return [part for part in parts if part.name.startswith(names)]
