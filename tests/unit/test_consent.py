"""Consent before the first measurement: told plainly, agreed to, stored; never assumed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from probe import consent
from probe.cli import main
from tests.unit.daemon_harness import clean_env, run_cli, write_targets


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("REACHPROBE_CONSENT", raising=False)
    return tmp_path / "config"


@pytest.fixture
def targets(tmp_path, http_server):
    return write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [f"http://127.0.0.1:{http_server.port}/"]}],
    }, [{"name": "canary", "scope": "international", "urls": [f"http://127.0.0.1:{http_server.port}/"]}])


def test_text_tells_the_risks_plainly():
    text = consent.CONSENT_TEXT.lower()
    for needed in ("anyone who can watch this connection", "illegal or\n    dangerous", "published openly",
                   "never stores your public ip", "--revoke"):
        assert needed in text


def test_run_without_consent_and_without_a_tty_exits_2_and_measures_nothing(tmp_path, targets, http_server):
    res = CliRunner().invoke(main, ["run", "--targets", str(targets), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "reachprobe consent" in res.output and "REACHPROBE_CONSENT=yes" in res.output
    assert not (tmp_path / "r").exists()
    assert http_server.thread.is_alive()


def test_run_yes_records_consent_and_measures(tmp_path, targets, config_dir):
    res = CliRunner().invoke(main, ["run", "--yes", "--quiet", "--targets", str(targets),
                                    "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert res.output == ""
    stored = json.loads((config_dir / "consent.json").read_text())
    assert stored["agreed"] is True and stored["via"] == "--yes" and stored["version"] == consent.CONSENT_VERSION
    assert oct((config_dir / "consent.json").stat().st_mode & 0o777) == "0o600"
    # Stored: later runs need no flag.
    res = CliRunner().invoke(main, ["run", "--quiet", "--targets", str(targets), "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output


def test_environment_variable_consents_for_unattended_use(monkeypatch, config_dir):
    monkeypatch.setenv("REACHPROBE_CONSENT", "yes")
    assert consent.ensure_consent(interactive=False) == "env"
    assert json.loads((config_dir / "consent.json").read_text())["via"] == "REACHPROBE_CONSENT"


@pytest.mark.parametrize("value", ["no", "", "0", "maybe"])
def test_other_environment_values_do_not_consent(monkeypatch, value):
    monkeypatch.setenv("REACHPROBE_CONSENT", value)
    with pytest.raises(consent.ConsentRequired):
        consent.ensure_consent(interactive=False)


def test_interactive_agreement_and_refusal(config_dir):
    runner = CliRunner()
    with runner.isolation(input="no\n"):
        with pytest.raises(consent.ConsentRequired, match="not given"):
            consent.ensure_consent(interactive=True)
    assert consent.stored_consent() is None
    with runner.isolation(input="yes\n") as streams:
        err = streams[1]
        assert consent.ensure_consent(interactive=True) == "interactive"
    assert "Anyone who can watch this connection" in err.getvalue().decode()
    assert consent.stored_consent()["via"] == "interactive"


def test_consent_for_older_wording_is_asked_again(config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "consent.json").write_text(json.dumps({"agreed": True, "version": 0, "via": "--yes"}))
    assert consent.stored_consent() is None
    (config_dir / "consent.json").write_text("{not json")
    assert consent.stored_consent() is None


def test_consent_command_show_yes_revoke(config_dir):
    runner = CliRunner()
    res = runner.invoke(main, ["consent", "--show"])
    assert res.exit_code == 0 and "published openly" in res.output and "no consent yet" in res.output
    res = runner.invoke(main, ["consent"])  # no TTY, no --yes
    assert res.exit_code == 2 and "consent --yes" in res.output
    res = runner.invoke(main, ["consent", "--yes"])
    assert res.exit_code == 0 and consent.stored_consent() is not None
    res = runner.invoke(main, ["consent", "--revoke"])
    assert res.exit_code == 0 and "withdrawn" in res.output and consent.stored_consent() is None


def test_unwritable_config_dir_still_honours_an_explicit_yes(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(blocker / "config"))
    assert consent.ensure_consent(yes=True) == "--yes"  # not stored, but given for this run


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_daemon_without_consent_exits_2_in_a_subprocess(tmp_path, targets):
    res = run_cli(["daemon", "--targets", str(targets), "--results", str(tmp_path / "r"), "--interval", "1s"],
                  clean_env(tmp_path, consent=False), timeout=30)
    assert res.returncode == 2, res.stderr
    assert "REACHPROBE_CONSENT=yes" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
