"""Run a scenario in a lab: censor actions and real probe runs, in time order.

The probe is the real CLI, run inside the vantage namespace:

    ip netns exec <vantage> python -m probe run --targets tests/lab/targets.lab.yaml \\
        --ca-bundle <lab ca.pem> --results <dir> --vantage lab --quiet --timeout 2 --retries 1

(``REACHPROBE_LAB_CLI`` overrides ``python -m probe``, e.g. ``reachprobe``). Each run writes to its
own results directory so runs never mix.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import topology as T
from tests.lab.checks import Line, load_lines
from tests.lab.scenarios import Run, Scenario

DEFAULT_PROBE_ARGS = ("--vantage", "lab", "--quiet", "--timeout", "2", "--retries", "1",
                      "--resolver", T.PUBLIC_RESOLVER_IP,
                      # the lab's servers live in special-purpose ranges; say so (never 10.10.34.0/24,
                      # the blockpage, nor 127/8, the bogon answer)
                      *(a for net in T.LAB_SERVER_NETS for a in ("--allow-answers", net)))
PROBE_TIMEOUT = 120.0  # seconds for one whole probe run (a hung run is killed and reported)


probe_cli = T.probe_cli


def control_args(lab: T.Lab) -> tuple[str, ...]:
    """``--control URL`` when the lab's helper runs and the probe's ``run`` takes --control
    (feature-detected: before both land, runs go without the outside control), unless the lab was
    brought up to show what one vantage alone concludes (``lab.use_control`` False, or
    ``REACHPROBE_LAB_CONTROL=off``)."""
    url = lab.control_url
    if url is None or not getattr(lab, "use_control", True) or os.environ.get("REACHPROBE_LAB_CONTROL") == "off":
        return ()
    if not T.has_option(T.probe_help("run"), "--control"):
        return ()
    return ("--control", url)


def probe_command(lab: T.Lab, results_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    # The lab targets file, never the shipped targets.yaml.
    return ["ip", "netns", "exec", lab.vantage, *probe_cli(), "run",
            "--targets", str(T.TARGETS_FILE), "--ca-bundle", str(lab.ca_pem),
            "--results", str(results_dir), *DEFAULT_PROBE_ARGS, *control_args(lab), *extra]


def probe_env(lab: T.Lab) -> dict[str, str]:
    """The probe's environment: no REACHPROBE_* setting leaks in from the caller (a
    REACHPROBE_TARGETS pointing at the shipped targets.yaml must never reach the lab), its config
    (vantage id, consent) lives in the lab's work directory, and consent is given for the lab."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHPROBE_")}
    env.update({"PYTHONPATH": str(T.REPO), "REACHPROBE_CONSENT": "yes",
                "REACHPROBE_CONFIG_DIR": str(lab.workdir / "probe-config")})
    return env


@dataclass
class ProbeRun:
    index: int
    run: Run | None
    scheduled: float
    started: float
    ended: float
    returncode: int | None
    command: list[str]
    stdout: str
    stderr: str
    results_dir: Path
    lines: dict[str, Line] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def control(self) -> bool:
        """The run had the outside control (the probe was given --control)."""
        return "--control" in self.command

    @property
    def expected(self):
        """The run's expected verdicts, with or without the outside control as it ran."""
        return None if self.run is None else self.run.expected(self.control)

    @property
    def timing_error(self) -> str | None:
        if self.run is None or self.run.window is None:
            return None
        lo, hi = self.run.window
        if self.started < lo or self.ended > hi:
            return (f"run {self.index} ({self.run.label}) ran {self.started:.1f}-{self.ended:.1f}s, outside its "
                    f"window {lo:g}-{hi:g}s: the lab machine was too slow for this timed scenario")
        return None

    def describe(self) -> str:
        return (f"run {self.index} [{self.run.label if self.run else ''}] {self.started:.1f}-{self.ended:.1f}s "
                f"rc={self.returncode} ({len(self.lines)} lines)")


def run_probe(lab: T.Lab, results_dir: Path, extra: tuple[str, ...] = (), *, index: int = 0,
              run: Run | None = None, t0: float | None = None, scheduled: float = 0.0,
              timeout: float = PROBE_TIMEOUT) -> ProbeRun:
    results_dir.mkdir(parents=True, exist_ok=True)
    cmd = probe_command(lab, results_dir, extra)
    t0 = time.monotonic() if t0 is None else t0
    started = time.monotonic() - t0
    try:
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=T.REPO,
                           env=probe_env(lab))
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, err = None, f"probe run killed after {timeout}s"
    ended = time.monotonic() - t0
    pr = ProbeRun(index, run, scheduled, started, ended, rc, cmd, out, err, results_dir)
    pr.lines, pr.problems = load_lines(results_dir)
    if rc not in (0,):
        pr.problems.insert(0, f"probe exited with {rc}: {err.strip()[-1500:]}")
    return pr


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs: list[ProbeRun]
    actions: list[tuple[float, float, str, dict]]  # (scheduled, done_at, action, args)

    def late_actions(self, slack: float = 2.0) -> list[str]:
        """Switches made mid-scenario (after the first run) that ran late: the ground truth of the runs
        that follow assumes they happened on time. Set-up actions before the first run may take as long
        as the machine needs (starting scapy in a namespace takes seconds on a busy machine): every
        event waits for the one before it, so a slow set-up only delays the runs, whose own windows
        are checked."""
        first_run = min((r.run.at for r in self.runs if r.run is not None), default=0.0)
        return [f"action {a} scheduled at {s:g}s ran at {d:.1f}s" for s, d, a, _ in self.actions
                if s > first_run and d - s > slack]


def execute(lab: T.Lab, scenario: Scenario, workdir: Path, *, log: Callable[[str], None] = lambda s: None,
            probe: bool = True) -> ScenarioResult:
    """Play the scenario's timeline on ``lab``; run the probe at each run time (unless ``probe`` is
    False: only the censor actions, for poking at the lab by hand)."""
    events: list[tuple[float, int, object]] = []
    for t, action, args in scenario.timeline:
        events.append((t, 0, (action, dict(args))))
    if probe:
        for i, r in enumerate(scenario.runs):
            events.append((r.at, 1, (i, r)))
    events.sort(key=lambda e: (e[0], e[1]))
    censor = lab.censor_ctl
    t0 = time.monotonic()
    runs: list[ProbeRun] = []
    actions: list[tuple[float, float, str, dict]] = []
    for t, kind, payload in events:
        delay = t - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        if kind == 0:
            action, args = payload  # type: ignore[misc]
            censor.apply(action, **args)
            done = time.monotonic() - t0
            actions.append((t, done, action, args))
            log(f"[{done:6.1f}s] censor: {action} {args or ''}")
        else:
            i, r = payload  # type: ignore[misc]
            pr = run_probe(lab, Path(workdir) / f"run-{i}", scenario.probe_args, index=i, run=r, t0=t0, scheduled=t)
            runs.append(pr)
            log(f"[{pr.ended:6.1f}s] probe: {pr.describe()}")
    return ScenarioResult(scenario, runs, actions)
