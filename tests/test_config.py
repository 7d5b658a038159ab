"""Config loading and every error path of `uptimed check-config`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT
from uptimed.cli import main
from uptimed.config import ConfigError, load_settings, parse_settings
from uptimed.probe.kinds import default_kinds

pytestmark = pytest.mark.usefixtures("clean_env")


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "uptimed.toml"
    path.write_text(text)
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_example_config_loads_and_documents_every_key() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert [(m.name, m.kind) for m in settings.monitors] == [
        ("Homepage", "http"),
        ("Database port", "tcp"),
        ("Gateway", "ping"),
        ("Mail exchangers", "dns"),
        ("Mail certificate", "tls"),
        ("Orders database", "postgres"),
        ("Nightly backup", "heartbeat"),
    ]
    assert settings.monitors[0].interval == 60.0 and settings.kafka.retention == 7 * 86400
    text = (ROOT / "config.example.toml").read_text()
    # Every key of every section appears in the example, written out or commented.
    for section in ("database", "redis", "kafka", "probe", "api", "smtp", "notify", "log"):
        for key in type(getattr(settings, section)).model_fields:
            assert f"{key} =" in text, f"[{section}] {key} is not documented in config.example.toml"
    # And the options of every built-in kind with options: their keys come from the kinds' models.
    for kind in ("http", "ping", "dns", "tls", "postgres", "heartbeat"):
        for option in default_kinds().config_fields(kind):
            assert f"{option.name} =" in text, (
                f"[monitors.{kind}] {option.name} is not documented in config.example.toml"
            )


def test_ok_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(
        tmp_path,
        '[probe]\nregions = ["eu", "us"]\n[[monitors]]\nowner = "a"\nname = "x"\ntarget = "http://x/"\n',
        capsys,
    )
    assert code == 0
    assert out.strip().endswith("OK (1 monitor, 0 integrations, regions: eu, us)")


def test_syntax_error_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, '[kafka]\nclient_id = "uptimed"\nbootstrap_servers = ["a:1" "b:2"]\n', capsys)
    assert code == 2
    assert f"{tmp_path / 'uptimed.toml'}:3:28: TOML syntax error: Unclosed array" in err


def test_syntax_error_at_the_end_names_the_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, '[kafka]\nclient_id = "uptimed"\nbootstrap_servers = [\n', capsys)
    assert code == 2
    assert "uptimed.toml:3: TOML syntax error: Invalid value" in err


def test_unknown_key_names_key_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, '[kafka]\nclient_id = "x"\nbootstrap_server = "a:1"\n', capsys)
    assert code == 2
    assert "uptimed.toml:3: kafka.bootstrap_server: unknown key" in err


def test_unknown_section_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, "[databse]\ndsn = 'x'\n", capsys)
    assert code == 2
    assert "uptimed.toml:1: databse: unknown key" in err


def test_wrong_type_says_what_was_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, "[api]\nhost = '0.0.0.0'\nport = 'eighty'\n", capsys)
    assert code == 2
    assert "uptimed.toml:3: api.port: must be a whole number (got 'eighty')" in err
    assert "'eighty'" in err


def test_missing_required_key_names_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, '[[monitors]]\nname = "a"\ntarget = "http://a/"\n', capsys)
    assert code == 2
    assert "uptimed.toml:1: monitors[0].owner: required key is missing" in err


def test_monitor_errors_point_into_the_right_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        '[probe]\nregions = ["eu", "us"]\n'
        '[[monitors]]\nowner = "a"\nname = "ok"\ntarget = "http://a/"\n'
        '[[monitors]]\nowner = "a"\nname = "bad"\ntarget = "http://b/"\ninterval = "500ms"\n'
    )
    code, _, err = check(tmp_path, text, capsys)
    assert code == 2
    assert "uptimed.toml:11: monitors[1].interval: must be at least 1 s" in err


@pytest.mark.parametrize(
    ("monitor", "key", "reason"),
    [
        ('target = "ftp://a/"', "monitors[0]", "needs an http:// or https:// URL"),
        (
            'target = "http://a/"\ninterval = 5\ntimeout = 10',
            "monitors[0]",
            "timeout (10 s) is longer than interval (5 s)",
        ),
        ('target = "http://a/"\nquorum = 3', "monitors[0].quorum", "quorum 3 is more than its 2 regions"),
        ('target = "http://a/"\nregions = ["mars"]', "monitors[0].regions", "unknown region 'mars'"),
        ('kind = "tcp"\ntarget = "db.internal"', "monitors[0]", "a tcp monitor needs host:port"),
        (
            'target = "http://a/"\n[monitors.http]\naccepted_statuses = ["2xx"]',
            "monitors[0].http.accepted_statuses",
            "expected a status code or range",
        ),
        # The API's and the pages' rules too (uptimed.rules.monitors).
        ('target = "http://a/"\nrepeat_interval = "60d"', "monitors[0].repeat_interval", "must be at most 30 days"),
        (
            'target = "http://a/"\nregions = ["eu"]\nquorum = 2',
            "monitors[0].quorum",
            "quorum 2 is more than its 1 regions",
        ),
    ],
)
def test_invalid_monitor_values_are_rejected_with_key_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monitor: str, key: str, reason: str
) -> None:
    text = f'[probe]\nregions = ["eu", "us"]\n[[monitors]]\nowner = "a"\nname = "m"\n{monitor}\n'
    code, _, err = check(tmp_path, text, capsys)
    assert code == 2
    assert f": {key}: " in err and reason in err, err


def test_secrets_are_not_echoed_in_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path, "[smtp]\npassword = 12345678901\n", capsys)
    assert code == 2 and "smtp.password" in err
    assert "12345678901" not in err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check-config", str(tmp_path / "nope.toml")])
    assert code == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPTIMED_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("UPTIMED_API__PORT", "9999")
    settings = parse_settings('[kafka]\nbootstrap_servers = ["file:1"]\nclient_id = "from-file"\n[api]\nport = 1\n')
    assert settings.kafka.bootstrap_servers == ["k1:9092", "k2:9092"]
    assert settings.kafka.client_id == "from-file"
    assert settings.api.port == 9999


def test_durations_accept_units() -> None:
    settings = parse_settings(
        '[[monitors]]\nowner = "a"\nname = "m"\ntarget = "http://a/"\ninterval = "1m30s"\ntimeout = "1500ms"\nrepeat_interval = "1h"\n'
    )
    monitor = settings.monitors[0]
    assert (monitor.interval, monitor.timeout, monitor.repeat_interval) == (90.0, 1.5, 3600.0)


def test_two_monitors_with_one_key_are_refused() -> None:
    text = '[[monitors]]\nowner = "a"\nname = "m"\ntarget = "http://a/"\n[[monitors]]\nowner = "a"\nname = "m"\ntarget = "http://b/"\n'
    with pytest.raises(ConfigError, match=r"monitors\[1\]\.key: two monitors of 'a' share the key 'm'"):
        parse_settings(text)


def test_integration_configs_are_checked_by_their_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        '[[integrations]]\nowner = "a"\nkey = "k"\ntype = "webhook"\nconfig = { webhookUrl = "ftp://nope" }\n'
        '[[integrations]]\nowner = "a"\nkey = "j"\ntype = "pager"\nconfig = {}\n'
    )
    code, _, err = check(tmp_path, text, capsys)
    assert code == 2
    assert "uptimed.toml:5: integrations[0].config.webhookUrl:" in err
    assert "uptimed.toml:9: integrations[1].type: unknown channel type 'pager'; available:" in err and "webhook" in err


ON_CALL = (
    '[[monitors]]\nowner = "a"\nkey = "shop"\nname = "shop"\ntarget = "http://a/"\nescalation_policy = "ops"\n'
    '[[integrations]]\nowner = "a"\nkey = "hook"\ntype = "webhook"\nconfig = { webhookUrl = "https://h.example/" }\n'
    '[[escalation_policies]]\nowner = "a"\nkey = "ops"\nname = "Ops"\n'
    '[[escalation_policies.steps]]\nafter = "0s"\nintegrations = ["hook"]\n'
)


def test_an_escalation_policy_in_the_file_names_the_owners_integrations_and_monitors_name_it() -> None:
    settings = parse_settings(ON_CALL + '[[escalation_policies.steps]]\nafter = "5m"\nintegrations = ["hook"]\n')
    [policy] = settings.escalation_policies
    assert [(s.after, s.integrations) for s in policy.steps] == [(0.0, ["hook"]), (300.0, ["hook"])]
    assert settings.monitors[0].escalation_policy == "ops"


@pytest.mark.parametrize(
    ("extra", "where", "reason"),
    [
        (
            '[[escalation_policies.steps]]\nafter = "5m"\nintegrations = ["pager"]\n',
            "uptimed.toml:21: escalation_policies[0].steps[1].integrations",
            "'a' has no integration with key 'pager' in this file",
        ),
        (
            '[[escalation_policies.steps]]\nafter = "0s"\nintegrations = ["hook"]\n',
            "escalation_policies[0].steps",
            "step 2 must come later than step 1 (0s is not after 0s)",
        ),
        (
            '[[monitors]]\nowner = "a"\nname = "api"\ntarget = "http://b/"\nescalation_policy = "oncall"\n',
            "uptimed.toml:23: monitors[1].escalation_policy",
            "'a' has no escalation policy with key 'oncall' in this file",
        ),
        (
            '[[monitors]]\nowner = "a"\nname = "api"\ntarget = "http://b/"\nescalation_policy_id = 3\n',
            "monitors[1].escalation_policy_id",
            "ids are not stable in a config file: name the policy with escalation_policy = KEY",
        ),
        ('[api]\npublic_url = "uptime.example.com"\n', "api.public_url", "must be an http:// or https:// URL"),
    ],
)
def test_on_call_mistakes_in_the_file_are_named_with_their_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, where: str, reason: str
) -> None:
    code, _, err = check(tmp_path, ON_CALL + extra, capsys)
    assert code == 2
    assert f"{where}: " in err and reason in err, err


def test_the_public_url_loses_its_trailing_slash() -> None:
    assert parse_settings('[api]\npublic_url = "https://uptime.example.com/"\n').api.public_url == (
        "https://uptime.example.com"
    )


def test_check_config_counts_the_escalation_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(tmp_path, ON_CALL, capsys)
    assert code == 0 and out.strip().endswith("OK (1 monitor, 1 integration, 1 escalation policy, regions: default)")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[api]\nport = 8080\n# caf\xe9\n", "bad.toml:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "bad.toml: TOML syntax error: nested too deeply"),
        (b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n", "bad.toml: TOML syntax error: nested too deeply"),
        (
            b'[database]\ndsn = "postgresql://u:pw-secret@db.example:notaport/x"\n',
            "bad.toml:2: database.dsn: has a port that is not a number from 1 to 65535",
        ),
        (
            b'[database]\ndsn = "mysql://u:pw-secret@db.example/x"\n',
            "bad.toml:2: database.dsn: must be a postgresql:// URL",
        ),
        (
            b'[database]\ndsn = "postgresql://u:pw-secret@[::1/x"\n',
            "bad.toml:2: database.dsn: has a malformed IPv6 host (write it as [::1]:5432)",
        ),
    ],
    ids=["not-utf8", "nested-arrays", "nested-tables", "dsn-port", "dsn-scheme", "dsn-ipv6"],
)
@pytest.mark.parametrize("command", ["check-config", "migrate"])
def test_config_tools_answer_a_broken_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    code = main([command, str(path)] if command == "check-config" else [command, "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"{tmp_path}/{expected}"]
    assert "secret" not in err
