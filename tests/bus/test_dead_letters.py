"""Dead letters from both topics: one format, a one-line reason naming the field, the origin in headers."""

from __future__ import annotations

import re

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from tests.support import EventReader, Stack
from uptimed.bus.dead_letters import invalid, one_line
from uptimed.check import CheckResult

REASON = re.compile(r"^invalid (check result|event): ([A-Za-z_.0-9]+: [^\n]+)$")


async def test_bad_check_results_and_bad_events_get_the_same_one_line_reason(topics: Stack, start_daemon) -> None:
    stack = topics
    secret = "https://hooks.example/T000/B000/s3cr3t-token"
    bad = {
        f"{stack.prefix}.checks": [
            b'{"monitor_id": "seven", "region": "eu", "status": "maybe", "error": "' + secret.encode() + b'"}',
            b"{not json",
        ],
        f"{stack.prefix}.website.events": [
            b'{"type": "website.gone", "websiteId": 1, "userId": 1, "url": "' + secret.encode() + b'"}',
            b"{not json",
        ],
    }
    dead = await EventReader(stack.bootstrap, f"{stack.prefix}.dead-letters").start()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        await start_daemon(stack.toml())
        for topic, values in bad.items():
            for value in values:
                await producer.send_and_wait(topic, value, key=b"7")
        records = await dead.wait_records(4)
    finally:
        await producer.stop()
        await dead.stop()

    by_source: dict[str, list[dict[str, str]]] = {}
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        by_source.setdefault(headers["source-topic"], []).append(headers)
        assert REASON.match(headers["reason"]), headers["reason"]
        assert secret not in headers["reason"] and "errors.pydantic.dev" not in headers["reason"]
        assert int(headers["source-partition"]) >= 0 and int(headers["source-offset"]) >= 0
    checks, events = by_source[f"{stack.prefix}.checks"], by_source[f"{stack.prefix}.website.events"]
    assert any("monitor_id: must be a whole number" in h["reason"] for h in checks)
    assert any("status: must be 'up' or 'down'" in h["reason"] for h in checks)
    assert any(h["reason"].startswith("invalid event: type: must be") for h in events)
    assert {h["reason"].split(": ", 1)[1] for h in checks if "JSON" in h["reason"]} == {
        h["reason"].split(": ", 1)[1] for h in events if "JSON" in h["reason"]
    }


def test_a_reason_is_one_line_without_the_input() -> None:
    try:
        CheckResult.model_validate({"monitor_id": 1, "region": "eu\nwest", "status": "up", "error": "x" * 5000})
    except ValidationError as exc:
        reason = invalid("check result", exc)
    assert reason == "invalid check result: error: must be at most 2000 characters"
    assert one_line("a\nb\r\n  c" + "d" * 600).startswith("a b c") and len(one_line("x" * 600)) == 500
