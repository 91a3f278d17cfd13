"""Lab fixtures: a fresh lab per test, torn down whatever happens; skips when the lab cannot run."""

from __future__ import annotations

import os
import signal

import pytest

from tests.lab import topology as T

APT_PACKAGES = "iproute2 iptables nftables dnsmasq-base nginx-light openssl procps"


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, iptables, tc): CI runs them as root"
    missing = T.missing_binaries()
    if missing:
        return f"lab tests need {', '.join(missing)} (apt-get install {APT_PACKAGES})"
    return None


def pytest_collection_modifyitems(config, items):
    reason = lab_skip_reason()
    if reason is None:
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory):
    """One lab CA and server certificate for the whole session (each lab reuses them)."""
    d = tmp_path_factory.mktemp("lab-pki")
    T.make_pki(d)
    # Ask the probe once per session whether it has the test helper (a CLI start: seconds on a
    # loaded machine), here rather than inside the first lab's set-up.
    T.helper_available()
    return d


@pytest.fixture
def lab(lab_pki, tmp_path):
    """A lab that is up for the test and gone after it, also on failure, timeout or Ctrl-C (and a
    SIGTERM is turned into KeyboardInterrupt so the teardown runs then too)."""
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    lab = T.Lab(workdir=tmp_path / "lab", ca_dir=lab_pki)
    try:
        lab.up()
        yield lab
    finally:
        try:
            lab.down()
        finally:
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")
