#!/usr/bin/env python3
"""Dependency audit with pip-audit: fail on a known vulnerability that is not accepted.

Accepted findings live in .ci/audit-ignore.txt (one vulnerability id per line, with a
comment saying why). When the vulnerability service cannot be reached (as on machines
that reach only package indexes), say so plainly instead of claiming a clean result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IGNORE_FILE = Path(__file__).with_name("audit-ignore.txt")


def accepted() -> set[str]:
    """Vulnerability ids accepted in the ignore file."""
    if not IGNORE_FILE.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in IGNORE_FILE.read_text().splitlines())
    return {line for line in lines if line}


def main() -> int:
    """Run pip-audit on this environment and judge its findings."""
    result = subprocess.run([sys.executable, "-m", "pip_audit", "--local", "--format", "json",
                             "--progress-spinner", "off"], capture_output=True, text=True,
                            check=False)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        print(f"audit: pip-audit failed: {result.stderr.strip()[-500:]}")
        return 0 if "ConnectionError" in result.stderr else 1
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    found = [(d["name"], d["version"], v["id"]) for d in deps for v in d.get("vulns", [])]
    open_findings = [f for f in found if f[2] not in accepted()]
    print(f"audit: {len(deps) - len(skipped)} of {len(deps)} packages audited, "
          f"{len(found)} known vulnerabilities, {len(open_findings)} not accepted")
    if deps and len(skipped) == len(deps):
        print("audit: WARNING: the vulnerability service was unreachable; nothing was audited")
    for name, version, vuln in open_findings:
        print(f"audit: {name} {version}: {vuln}")
    return 1 if open_findings else 0


if __name__ == "__main__":
    sys.exit(main())
