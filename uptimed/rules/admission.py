"""What a user may make through the API or the pages: the target policy and the quotas, applied once for both faces.

The config file's monitors and integrations never come through here: the
operator declared them. Each check raises the rules' own errors: a target
the policy refuses or an interval below ``[quotas] min_interval`` is
:class:`~uptimed.rules.errors.Invalid` at its field, a full count
:class:`~uptimed.rules.quotas.QuotaExceeded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from uptimed.monitor import Monitor, MonitorFields
from uptimed.rules import owned
from uptimed.rules.errors import Invalid, Problem
from uptimed.rules.monitors import checked
from uptimed.rules.quotas import interval_problems
from uptimed.rules.services import Services
from uptimed.rules.targets import problems_of_config, problems_of_host, problems_of_url, split_host_port
from uptimed.store.integrations import Integration

CONNECT_TO_TARGET = frozenset({"http", "tcp", "tls", "ping", "postgres", "redis"})
"""Built-in kinds that connect to their target (a dns monitor asks a server about it, a heartbeat has none)."""


async def target_problems(services: Services, fields: MonitorFields) -> list[Problem]:
    """The target policy's refusal of a monitor's target, at ``target``, if it refuses it.

    Only a convenience, so a refusal shows when the monitor is saved: every kind
    is held to the policy where it connects (``CheckContext.addresses``).
    """
    if fields.kind == "http":
        return await problems_of_url(services.policy, fields.target, ("target",))
    if fields.kind not in CONNECT_TO_TARGET:
        return []
    if "://" in fields.target:  # postgresql://..., redis://...
        try:
            parts = urlsplit(fields.target)
            host, port = parts.hostname, parts.port or 0
        except ValueError:
            return []  # the kind's own check of the target says what is wrong
        return await problems_of_host(services.policy, host, port, ("target",)) if host else []
    found = split_host_port(fields.target) or (fields.target.strip("[]"), 0)
    return await problems_of_host(services.policy, *found, ("target",))


async def monitor_fields(services: Services, fields: MonitorFields) -> MonitorFields:
    """``fields`` of a monitor a user makes or edits, checked: the cluster's rules, the minimum interval, the target."""
    fields = checked(fields, services.settings.probe.all_regions)
    found = interval_problems(services.settings.quotas, fields) + await target_problems(services, fields)
    if found:
        raise Invalid(found)
    return fields


async def integration_config(services: Services, config: dict[str, Any]) -> dict[str, Any]:
    """A validated integration config whose URLs the target policy allows; :class:`Invalid` at each one it refuses."""
    found = await problems_of_config(services.policy, config)
    if found:
        raise Invalid(found)
    return config


async def create_monitor(
    services: Services, user_id: int, fields: MonitorFields, *, notify: Sequence[int] | None = None
) -> Monitor:
    """A new monitor of the user (``fields`` from :func:`monitor_fields`), within ``[quotas] monitors_per_user``.

    ``notify``: the integrations it notifies (None: all of them).
    """
    limit = services.settings.quotas.monitors_per_user
    return await owned.create_monitor(services.pool, user_id, fields, notify=notify, limit=limit)


async def create_integration(
    services: Services,
    user_id: int,
    type_: str,
    config: dict[str, Any],
    *,
    name: str | None,
    enabled: bool = True,
) -> Integration:
    """A new integration of the user (``config`` from :func:`integration_config`), within ``[quotas]``."""
    limit = services.settings.quotas.integrations_per_user
    return await owned.create_integration(
        services.pool, user_id, type_, config, name=name, enabled=enabled, limit=limit
    )
