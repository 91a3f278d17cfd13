"""The censorship lab by hand.

    python -m tests.lab list                 the scenario catalog
    python -m tests.lab up                   build a lab and leave it running (prints how to enter it)
    python -m tests.lab scenario NAME        on that lab: lift earlier censorship, play NAME's timeline,
                                             run the probe at its run times, compare with the ground truth
                                             (--no-probe: only switch the censorship on, then poke by hand)
    python -m tests.lab run [-- ARGS...]     run the probe once in the vantage (extra args to `reachprobe run`)
    python -m tests.lab reset                lift all censorship, restart stopped servers, link up
    python -m tests.lab down                 tear the lab down (namespaces, processes, /etc/netns entry)
    python -m tests.lab check NAME...        self-contained: fresh lab, scenario, checks, teardown
                                             (what the pytest test does; exit 1 on a failed check)

Needs root. Run from the repository root (cd /work/main).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.lab import checks as C
from tests.lab import topology as T
from tests.lab.runner import (
    DEFAULT_PROBE_ARGS,
    ProbeRun,
    execute,
    probe_command,
    run_probe,
)
from tests.lab.scenarios import BY_NAME, CATALOG


def _manual_lab(prefix: str | None) -> T.Lab:
    states = sorted(T.STATE_ROOT.glob("*.json")) if T.STATE_ROOT.is_dir() else []
    labs = [T.Lab.from_state(f) for f in states]
    labs = [lab for lab in labs if lab.manual and (prefix is None or lab.prefix == prefix)]
    if not labs:
        sys.exit("no lab is up: run `python -m tests.lab up` first")
    if len(labs) > 1:
        sys.exit(f"several labs are up ({', '.join(lab.prefix for lab in labs)}): pick one with --prefix")
    return labs[0]


def _report_run(pr: ProbeRun, *, checks=True) -> bool:
    ok = True
    print(f"\n== {pr.describe()}  results: {pr.results_dir}")
    if pr.timing_error:
        print(f"   TIMING: {pr.timing_error}")
        ok = False
    for p in pr.problems:
        print(f"   PROBLEM: {p}")
        ok = False
    expected = pr.expected
    print(f"   outside control: {'yes' if pr.control else 'no (expectations without control)'}")
    print(C.verdict_table(pr.lines, expected))
    if pr.run and checks:
        errors = C.check_steps(pr.run.checks, pr.lines)
        for e in errors:
            print(f"   STEP CHECK FAILED: {e}")
        mism = C.compare_verdicts(pr.expected, pr.lines)
        for m in mism:
            print(f"   VERDICT MISMATCH: {m}")
        if not errors and not mism:
            print("   all step checks and verdicts match the ground truth")
        ok = ok and not errors and not mism
    return ok


def cmd_list(args) -> int:
    for s in CATALOG:
        runs = f"{len(s.runs)} runs over {s.duration:.0f}s" if s.timed else "1 run"
        print(f"{s.name:<24} {runs}")
        print(textwrap.indent(textwrap.fill(s.description, 96), "    "))
    return 0


def cmd_up(args) -> int:
    lab = T.Lab(prefix=args.prefix)
    lab.up()
    lab.detach()
    print(f"""lab {lab.prefix} is up (state {lab.state_file}, work dir {lab.workdir})
  namespaces: {lab.vantage}  {lab.censor}  {lab.internet}
  enter the vantage:   ip netns exec {lab.vantage} bash
  try:                 ip netns exec {lab.vantage} curl --cacert {lab.ca_pem} https://www.facebook.lab/
  censor's rules:      ip netns exec {lab.censor} nft list ruleset
  outside control:     {lab.control_url or 'none (the probe under test has no `helper` command)'}
  apply a scenario:    python -m tests.lab scenario dns_hijack [--no-probe]
  run the probe:       python -m tests.lab run
  probe by hand:       {' '.join(probe_command(lab, Path('/tmp/lab-results')))}
                       (with REACHPROBE_CONSENT=yes in the environment)
  tear down:           python -m tests.lab down""")
    return 0


def cmd_scenario(args) -> int:
    lab = _manual_lab(args.prefix)
    scenario = BY_NAME[args.name]
    lab.restore()
    out = Path(tempfile.mkdtemp(prefix=f"reachprobe-lab-{scenario.name}-"))
    print(f"scenario {scenario.name}: {scenario.description}")
    result = execute(lab, scenario, out, log=print, probe=not args.no_probe)
    reports = [_report_run(pr) for pr in result.runs]  # every run reported, no short-circuit
    ok = all(reports)
    print(f"\ncensorship of {scenario.name} stays on; `python -m tests.lab reset` lifts it")
    return 0 if ok else 1


def cmd_run(args) -> int:
    lab = _manual_lab(args.prefix)
    out = Path(tempfile.mkdtemp(prefix="reachprobe-lab-run-"))
    pr = run_probe(lab, out, tuple(args.probe_args))
    _report_run(pr, checks=False)
    return 0 if not pr.problems else 1


def cmd_reset(args) -> int:
    lab = _manual_lab(args.prefix)
    lab.restore()
    print(f"lab {lab.prefix}: censorship lifted, servers and link restored")
    return 0


def cmd_down(args) -> int:
    lab = _manual_lab(args.prefix)
    lab.down()
    print(f"lab {lab.prefix} is down")
    return 0


def cmd_check(args) -> int:
    ok = True
    for name in args.names:
        scenario = BY_NAME[name]
        lab = T.Lab()
        try:
            lab.up()
            out = Path(tempfile.mkdtemp(prefix=f"reachprobe-lab-{name}-"))
            print(f"\n##### {name} (lab {lab.prefix}): {scenario.description}")
            result = execute(lab, scenario, out, log=print)
            reports = [_report_run(pr) for pr in result.runs]
            ok = all(reports) and ok
        finally:
            lab.down()
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--prefix", help="the lab to act on (when several are up); with `up`: its name prefix")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list").set_defaults(fn=cmd_list)
    sub.add_parser("up").set_defaults(fn=cmd_up)
    p = sub.add_parser("scenario")
    p.add_argument("name", choices=sorted(BY_NAME))
    p.add_argument("--no-probe", action="store_true", help="only switch the censorship on")
    p.set_defaults(fn=cmd_scenario)
    p = sub.add_parser("run")
    p.add_argument("probe_args", nargs=argparse.REMAINDER, help=f"extra args after {' '.join(DEFAULT_PROBE_ARGS)}")
    p.set_defaults(fn=cmd_run)
    sub.add_parser("reset").set_defaults(fn=cmd_reset)
    sub.add_parser("down").set_defaults(fn=cmd_down)
    p = sub.add_parser("check")
    p.add_argument("names", nargs="+", choices=sorted(BY_NAME), metavar="NAME")
    p.set_defaults(fn=cmd_check)
    args = ap.parse_args(argv)
    if args.cmd != "list" and T.os.geteuid() != 0:
        sys.exit("the lab needs root")
    # SIGTERM tears down like Ctrl-C does (finally blocks and the labs' atexit handlers run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if getattr(args, "probe_args", None) and args.probe_args[:1] == ["--"]:
        args.probe_args = args.probe_args[1:]
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
