"""The http probe against real local servers: what a user sees in a check result."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from uptimed import __version__
from uptimed.check import CheckResult, CheckStatus, ErrorClass

Check = Callable[..., Awaitable[CheckResult]]


async def test_a_healthy_page_is_up_with_its_status_and_response_time(check: Check, target: Any) -> None:
    before_ms = time.time_ns() // 1_000_000
    result = await check(target.url + "/")

    assert result.status is CheckStatus.UP
    assert result.status_code == 200
    assert result.error_class is None and result.error is None
    assert result.response_time_ms is not None and 0 < result.response_time_ms < 2000
    assert (result.monitor_id, result.region, result.scheduled_at_ms) == (42, "eu-west", 1_000)
    assert before_ms <= result.checked_at_ms <= time.time_ns() // 1_000_000


async def test_a_server_error_is_down_with_the_status_code(check: Check, target: Any) -> None:
    result = await check(target.url + "/error")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.STATUS
    assert result.status_code == 500
    assert "500" in result.error
    assert result.response_time_ms is not None


async def test_accepted_statuses_decide_what_is_up(check: Check, target: Any) -> None:
    expects_error = await check(target.url + "/error", accepted_statuses=["500-599"])
    strict = await check(target.url + "/redirect", follow_redirects=False, accepted_statuses=[200, 204])

    assert expects_error.status is CheckStatus.UP
    assert strict.status is CheckStatus.DOWN
    assert strict.error_class is ErrorClass.STATUS
    assert strict.status_code == 302
    assert "302" in strict.error and "200, 204" in strict.error


async def test_redirects_are_followed_to_the_final_page(check: Check, target: Any) -> None:
    result = await check(target.url + "/redirect", keyword="All systems operational")

    assert result.status is CheckStatus.UP
    assert result.status_code == 200


async def test_a_redirect_loop_is_down(check: Check, target: Any) -> None:
    result = await check(target.url + "/redirect-loop")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.STATUS
    assert "redirects" in result.error


@pytest.mark.parametrize(
    ("path", "options", "status"),
    [
        ("/", {"keyword": "All systems operational"}, CheckStatus.UP),
        ("/maintenance", {"keyword": "All systems operational"}, CheckStatus.DOWN),
        ("/maintenance", {"keyword_absent": "maintenance"}, CheckStatus.DOWN),
        ("/", {"keyword_absent": "maintenance"}, CheckStatus.UP),
    ],
)
async def test_keywords_that_must_or_must_not_appear(
    check: Check, target: Any, path: str, options: dict, status: CheckStatus
) -> None:
    result = await check(target.url + path, **options)

    assert result.status is status
    if status is CheckStatus.DOWN:
        assert result.error_class is ErrorClass.KEYWORD
        assert repr(next(iter(options.values()))) in result.error
        assert result.status_code == 200


async def test_a_keyword_is_found_in_a_compressed_page(check: Check, target: Any) -> None:
    result = await check(target.url + "/gzip", keyword="All systems operational")

    assert result.status is CheckStatus.UP


async def test_a_keyword_is_looked_for_in_the_first_2_mib_of_a_large_page(check: Check, target: Any) -> None:
    start = await check(target.url + "/large", keyword="<html>")
    end = await check(target.url + "/large", keyword="Status: ok")

    assert start.status is CheckStatus.UP
    assert end.status is CheckStatus.DOWN
    assert end.error_class is ErrorClass.KEYWORD
    assert "first 2 MiB" in end.error


@pytest.mark.parametrize(
    ("json_path", "json_equals"),
    [("status", "ok"), ("checks.0.ok", True), ("checks.1.name", "cache"), ("workers", 1), ("checks.1", None)],
)
async def test_a_json_value_that_matches_is_up(check: Check, target: Any, json_path: str, json_equals: object) -> None:
    result = await check(target.url + "/health", json_path=json_path, json_equals=json_equals)

    assert result.status is CheckStatus.UP, result.error


@pytest.mark.parametrize(
    ("path", "json_path", "json_equals", "message"),
    [
        ("/health", "checks.1.ok", True, "'checks.1.ok' is false, expected true"),
        ("/health", "workers", True, "'workers' is 1, expected true"),
        ("/health", "checks.5.ok", True, "'checks.5.ok' not found"),
        ("/health", "status.code", "ok", "'status.code' not found"),
        ("/not-json", "status", "ok", "not JSON"),
    ],
)
async def test_a_json_value_that_differs_or_is_missing_is_down(
    check: Check, target: Any, path: str, json_path: str, json_equals: object, message: str
) -> None:
    result = await check(target.url + path, json_path=json_path, json_equals=json_equals)

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.JSON
    assert message in result.error


async def test_method_headers_and_body_reach_the_target(check: Check, target: Any) -> None:
    order = {
        "method": "POST",
        "body": '{"item": "probe"}',
        "accepted_statuses": [201],
        "json_path": "order.state",
        "json_equals": "accepted",
    }
    authorised = await check(
        target.url + "/orders",
        headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
        **order,
    )
    unauthorised = await check(target.url + "/orders", **order)

    assert authorised.status is CheckStatus.UP, authorised.error
    assert authorised.status_code == 201
    assert unauthorised.error_class is ErrorClass.STATUS
    assert unauthorised.status_code == 401


async def test_requests_identify_as_uptimed(check: Check, target: Any) -> None:
    result = await check(target.url + "/echo", json_path="user_agent", json_equals=f"uptimed/{__version__}")

    assert result.status is CheckStatus.UP, result.error


async def test_the_target_can_tell_which_region_checked_it(check: Check, target: Any) -> None:
    plain = await check(target.url + "/echo", json_path="region", json_equals="eu-west")
    with_headers = await check(
        target.url + "/echo", headers={"Accept": "application/json"}, json_path="region", json_equals="eu-west"
    )

    assert plain.status is CheckStatus.UP, plain.error
    assert with_headers.status is CheckStatus.UP, with_headers.error


async def test_cookies_of_one_check_never_reach_another(check: Check, target: Any) -> None:
    await check(target.url + "/set-cookie")
    result = await check(target.url + "/echo", keyword_absent="from-another-monitor")

    assert result.status is CheckStatus.UP, result.error


async def test_a_target_that_does_not_answer_times_out_within_the_timeout(check: Check, target: Any) -> None:
    started = time.perf_counter()
    result = await check(target.url + "/slow", timeout=0.2)
    elapsed = time.perf_counter() - started

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.TIMEOUT
    assert "0.2 s" in result.error
    assert 0.2 <= elapsed < 1.0


async def test_a_body_that_never_ends_times_out_when_a_keyword_needs_it(check: Check, target: Any) -> None:
    result = await check(target.url + "/slow-body", timeout=0.2, keyword="</html>")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.TIMEOUT


async def test_without_body_checks_the_body_is_not_waited_for(check: Check, target: Any) -> None:
    result = await check(target.url + "/slow-body", timeout=0.5)

    assert result.status is CheckStatus.UP
    assert result.status_code == 200
    assert result.response_time_ms < 500


async def test_an_unresolvable_host_is_a_dns_failure(check: Check) -> None:
    result = await check("http://no-such-host.invalid/")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.DNS
    assert "no-such-host.invalid" in result.error


async def test_a_refused_connection_is_a_connect_failure(check: Check, closed_port: int) -> None:
    result = await check(f"http://127.0.0.1:{closed_port}/")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.CONNECT
    assert "connection refused" in result.error


async def test_a_server_that_hangs_up_without_answering_is_a_connect_failure(check: Check, hang_up_port: int) -> None:
    result = await check(f"http://127.0.0.1:{hang_up_port}/")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.CONNECT


async def test_errors_never_repeat_the_url_which_may_hold_a_token(check: Check, closed_port: int) -> None:
    result = await check(f"http://127.0.0.1:{closed_port}/status?token=s3cret", timeout=0.2)

    assert "s3cret" not in result.error


async def test_an_invalid_header_value_is_reported_not_raised(check: Check, target: Any) -> None:
    result = await check(target.url + "/", headers={"X-Bad": "one\r\nX-Injected: two"})

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.OTHER


async def test_an_untrusted_certificate_fails_with_tls(check: Check, target: Any) -> None:
    result = await check(target.untrusted_tls_url + "/")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.TLS
    assert "certificate" in result.error


async def test_an_untrusted_certificate_is_accepted_with_verify_tls_off(check: Check, target: Any) -> None:
    result = await check(target.untrusted_tls_url + "/", verify_tls=False, keyword="All systems operational")

    assert result.status is CheckStatus.UP, result.error


async def test_a_trusted_certificate_is_up(check: Check, target: Any) -> None:
    result = await check(target.trusted_tls_url + "/")

    assert result.status is CheckStatus.UP, result.error


@pytest.mark.parametrize("verify_tls", [True, False])
async def test_a_certificate_expiring_within_the_warning_is_down(
    check: Check, target: Any, cert_days: int, verify_tls: bool
) -> None:
    url = target.trusted_tls_url if verify_tls else target.untrusted_tls_url
    result = await check(url + "/", verify_tls=verify_tls, cert_expiry_days=10)

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.CERT_EXPIRY
    days_left = re.search(r"expires in ([0-9.]+) days", result.error)
    assert days_left is not None and abs(float(days_left[1]) - cert_days) <= 0.1
    assert "10-day" in result.error
    assert result.status_code == 200


@pytest.mark.parametrize("verify_tls", [True, False])
async def test_a_certificate_expiring_after_the_warning_is_up(check: Check, target: Any, verify_tls: bool) -> None:
    url = target.trusted_tls_url if verify_tls else target.untrusted_tls_url
    first = await check(url + "/", verify_tls=verify_tls, cert_expiry_days=2)
    # The second check reuses the pooled connection; the certificate is still known.
    reused = await check(url + "/", verify_tls=verify_tls, cert_expiry_days=2)

    assert first.status is CheckStatus.UP, first.error
    assert reused.status is CheckStatus.UP, reused.error


async def test_a_certificate_check_on_plain_http_is_down(check: Check, target: Any) -> None:
    result = await check(target.url + "/", cert_expiry_days=10)

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.CERT_EXPIRY
    assert "not TLS" in result.error
