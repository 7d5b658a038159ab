"""`uptimed run` serves the API on `[api]`: health, readiness and metrics after a short run of real checks."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Stack, Target, eventually, to_toml


async def test_the_daemon_serves_health_readiness_and_metrics_of_its_pipeline(stack: Stack, start_daemon) -> None:
    target = await Target(status=200).start()
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    monitor = (
        f'[[monitors]]\nowner = "ops"\nname = "local"\ntarget = "{target.url("/health")}"\n'
        'interval = "1s"\ntimeout = "1s"\n'
    )
    try:
        daemon = await start_daemon(to_toml(sections) + "\n" + monitor)
        listening = await daemon.wait_for("api.listening")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listening['port']}") as client:
            await target.wait_hits(3, path="/health")

            async def ready() -> httpx.Response | None:
                response = await client.get("/readyz")
                return response if response.status_code == 200 else None

            readiness = await eventually(ready)
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/api/v1/monitors")).status_code == 401

            async def pipeline_measured() -> dict[tuple[str, str], float] | None:
                text = (await client.get("/metrics")).text
                samples = {
                    (s.name, s.labels.get("region") or s.labels.get("state") or s.labels.get("group", "")): s.value
                    for family in text_string_to_metric_families(text)
                    for s in family.samples
                }
                evaluated = any(name == "uptimed_consumer_lag" for name, _ in samples)
                return samples if samples.get(("uptimed_checks_total", "default"), 0) >= 2 and evaluated else None

            samples = await eventually(pipeline_measured)
    finally:
        await target.stop()

    parts = readiness.json()["parts"]
    assert {"postgresql", "redis", "kafka", "evaluator", "notifier", "dispatcher", "api"} <= set(parts)
    assert all(parts.values())
    assert samples[("uptimed_check_duration_seconds_count", "default")] >= 2
    assert samples[("uptimed_schedule_lag_seconds_count", "default")] >= 2
    assert ("uptimed_consumer_lag", f"{stack.prefix}.evaluator") in samples
    assert samples[("uptimed_channels", "loaded")] >= 5
