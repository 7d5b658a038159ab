"""The target policy as data and one check: which addresses a user's monitor or integration may reach."""

from __future__ import annotations

import ipaddress

import pytest

from tests.support import Stack
from uptimed.rules.targets import TRUSTED, TargetPolicy, TargetRefused, policy_for

DEFAULT = TargetPolicy()

REFUSED = [
    ("127.0.0.1", "a loopback address"),
    ("127.255.0.9", "a loopback address"),
    ("::1", "a loopback address"),
    ("169.254.169.254", "a link-local address (cloud metadata lives there)"),
    ("fe80::1", "a link-local address (cloud metadata lives there)"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fd00:ec2::254", "a private address"),  # AWS's metadata service over IPv6
    ("100.100.100.200", "a carrier-grade NAT address"),  # Alibaba Cloud's metadata service
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("255.255.255.255", "a reserved address"),
    ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped: where it really leads
    ("64:ff9b::a9fe:a9fe", "a link-local address (cloud metadata lives there)"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize(("address", "rule"), REFUSED)
def test_the_default_policy_refuses_internal_addresses_naming_the_rule_and_the_setting(address: str, rule: str) -> None:
    refused = DEFAULT.refusal(address, 80)
    assert isinstance(refused, TargetRefused)
    assert rule in str(refused)
    assert "[security] allow_networks" in str(refused)
    assert TRUSTED.refusal(address, 80) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.refusal(address, 443) is None


def test_allow_networks_opens_a_network_and_nothing_more() -> None:
    policy = TargetPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert policy.refusal("10.9.8.7", 80) is None
    assert policy.refusal("::ffff:10.9.8.7", 80) is None
    assert policy.refusal("192.168.1.1", 80) is not None
    assert policy.refusal("169.254.169.254", 80) is not None


def test_allow_all_networks_still_keeps_uptimeds_own_services_closed(stack: Stack) -> None:
    settings = stack.settings(security={"allow_all_networks": True}, api={"host": "127.0.0.1", "port": 8765})
    policy = policy_for(settings)
    pg_port = int(stack.dsn.rsplit(":", 1)[1].split("/")[0])
    redis_port = int(stack.redis_url.rsplit(":", 1)[1].split("/")[0])
    kafka_port = int(stack.bootstrap.split(",")[0].rsplit(":", 1)[1])
    assert policy.refusal("127.0.0.1", 9999) is None
    assert policy.refusal("10.0.0.1", 5432) is None
    for port, name in ((pg_port, "PostgreSQL"), (redis_port, "Redis"), (kafka_port, "Kafka broker"), (8765, "API")):
        refused = policy.refusal("127.0.0.1", port)
        assert refused is not None and refused.own_service, port
        assert f"uptimed's own {name}" in str(refused)
        assert "declare it in the config file instead" in str(refused)
        assert policy.refusal("::ffff:127.0.0.1", port) is not None


def test_an_api_on_every_address_closes_its_port_on_this_machines_addresses(stack: Stack) -> None:
    policy = policy_for(stack.settings(security={"allow_all_networks": True}, api={"host": "0.0.0.0", "port": 8766}))
    assert policy.refusal("127.0.0.1", 8766) is not None
    assert policy.refusal("::1", 8766) is not None
    assert policy.refusal("127.0.0.1", 8767) is None


async def test_resolve_keeps_only_allowed_addresses_and_refuses_a_name_with_none() -> None:
    with pytest.raises(TargetRefused, match="every address of localhost"):
        await DEFAULT.resolve("localhost", 80)
    assert await TRUSTED.resolve("localhost", 80)
    opened = TargetPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert await opened.resolve("localhost", 80) == ["127.0.0.1"]  # ::1 stays refused
    with pytest.raises(TargetRefused):
        await DEFAULT.resolve("169.254.169.254", 80)
