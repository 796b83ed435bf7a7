"""``tritonship doctor``: what is installed and reachable here, each with its fix."""

from __future__ import annotations

import argparse

from tritonship.cli.common import Subparsers, add_command, add_json, add_repo

#: How each status is shown (fixed width, so the names line up).
MARKS = {"ok": "ok     ", "warn": "warn   ", "missing": "MISSING", "info": "-      "}


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run every check; exit 1 when an essential is missing (docs/getting-started.md)."""
    from tritonship.local.doctor import SECTIONS, as_json, run_checks

    checks = run_checks(args.repo)
    if args.json:
        print(as_json(checks))
    else:
        for key, title in SECTIONS.items():
            print(f"{title}:")
            for check in (c for c in checks if c.section == key):
                print(f"  {MARKS[check.status]} {check.name}: {check.detail}")
                if check.fix:
                    print(f"          fix: {check.fix}")
        failed = [c.name for c in checks if c.failed]
        print(_verdict(failed))
    return 1 if any(c.failed for c in checks) else 0


def _verdict(failed: list[str]) -> str:
    """The last line: whether the local flow can run."""
    if failed:
        return f"missing essentials: {', '.join(failed)}: the local flow cannot run until fixed"
    return "the essentials are here: build, serve natively, invoke (warnings: optional steps)"


def register(sub: Subparsers) -> None:
    """``doctor [--repo DIR] [--json]``."""
    doctor = add_command(
        sub, "doctor", cmd_doctor, "what is installed and reachable here, with the fixes"
    )
    add_repo(doctor)
    add_json(doctor)
