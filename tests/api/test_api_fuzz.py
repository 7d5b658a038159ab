"""The whole API fuzzed from its own OpenAPI document by schemathesis, over real uvicorn and PostgreSQL.

Every operation gets schema-valid and schema-invalid requests, with a valid
token: no answer may be a 5xx, and every answer must match its documented
status codes, headers and schema; invalid input must be refused, and so must
the same request without the token. Examples are derandomized, so a run is
repeatable; raise EXAMPLES_PER_OPERATION (300 passes in ~3 minutes) to dig.

Channel deliveries triggered by ``POST .../test`` go to an in-process
transport (and SMTP to a closed local port): generated URLs are never
contacted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from tests.api.conftest import Api, Person, monitor_body
from uptimed.api.server import bind, serve
from uptimed.app import create_app
from uptimed.channels.discord import DiscordChannel
from uptimed.channels.email import EmailChannel
from uptimed.channels.registry import ChannelRegistry
from uptimed.channels.slack import SlackChannel
from uptimed.channels.telegram import TelegramChannel
from uptimed.channels.webhook import WebhookChannel
from uptimed.config import ApiSettings
from uptimed.store import api_tokens

EXAMPLES_PER_OPERATION = 60
CHECKS = [
    not_a_server_error,
    ignored_auth,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Invalid input may also be refused for its size (413), which the default list leaves out.
CONFIG = SchemathesisConfig.from_str(
    """
    [checks.negative_data_rejection]
    expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422]
    """
)


def fuzz(spec: dict[str, Any], base_url: str, new_token: Callable[[], str]) -> list[str]:
    """Run schemathesis against every operation, each with a fresh token; the failures, one line each.

    A fresh token per operation, because one operation revokes tokens by id.
    """
    schema = schemathesis.openapi.from_dict(spec, config=CONFIG)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = {"Authorization": f"Bearer {new_token()}"}
        for mode, checks in (
            (GenerationMode.POSITIVE, CHECKS),
            (GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection]),
        ):
            try:
                examples(operation, mode, base_url, headers, checks)()
            except Unsatisfiable:
                pass  # nothing to make invalid: an operation without parameters or body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{operation.label} [{mode.value}]: {str(exc).strip()[:1500]}")
    return failures


def examples(
    operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str], checks: list[Any]
) -> Callable[[], None]:
    """A Hypothesis test sending ``operation`` cases of ``mode`` and validating each answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    return run


# About 30 operations at EXAMPLES_PER_OPERATION each: ~2.5 minutes on an idle machine, over 5 on a busy one.
@pytest.mark.timeout(900)
async def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(api: Api, alice: Person) -> None:
    # Something to find: a monitor and an integration of the caller.
    await alice.client.post("/api/v1/monitors", json=monitor_body())
    await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "a@x.org"}})
    builtins = ChannelRegistry.from_channels(
        [EmailChannel, WebhookChannel, SlackChannel, DiscordChannel, TelegramChannel]
    )
    deliveries = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="ok")))
    fuzz_settings = api.settings.model_copy(
        update={"smtp": api.settings.smtp.model_copy(update={"port": 1, "timeout": 2})}
    )

    async def ready() -> dict[str, bool]:
        return {"postgresql": True}

    app = create_app(pool=api.pool, registry=builtins, settings=fuzz_settings, http=deliveries, readiness=ready)
    sock = bind(ApiSettings(host="127.0.0.1", port=0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    serving = anyio.CancelScope()

    async def run_server() -> None:
        with serving:
            await serve(app, ApiSettings(), sock=sock)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            spec = json.loads(json.dumps(app.openapi()))
            loop = asyncio.get_running_loop()

            def new_token() -> str:
                minted = asyncio.run_coroutine_threadsafe(api_tokens.create(api.pool, alice.id, "fuzz"), loop)
                return minted.result(timeout=10)[0]

            failures = await asyncio.to_thread(fuzz, spec, base_url, new_token)
            serving.cancel()
    finally:
        await deliveries.aclose()

    assert failures == [], "\n\n".join(failures)
