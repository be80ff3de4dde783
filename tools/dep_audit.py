"""Dependency audit of the installed environment: known advisories for every installed distribution.

    .venv/bin/python tools/dep_audit.py [--strict] [--no-pip-audit] [--timeout 15] [--workers 4]

Why not just `pip-audit`: it is tried first, but where its sources cannot be reached it says "No
known vulnerabilities found" and exits 0 with every package skipped (PyPI's per-version JSON
answers 404 here, osv.dev does not resolve): a green that audited nothing. So its JSON is read,
and when it audited no package this falls back to PyPI's project JSON (`/pypi/<name>/json`),
whose `vulnerabilities` are the advisories PyPI lists for the project's latest release, each
with `fixed_in`; an advisory counts for the installed version when that version is below the fix
on its own branch (and inside the advisory's affected ranges where it gives any). Limitation,
said in the output too: an advisory already fixed in the latest release is no longer listed
there, so the fallback also counts installed versions older than the latest ("outdated").

Exit status: 0, also with findings or when no source was reachable (status "skipped"), unless
`--strict`: then 1 for findings or a skipped audit. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYPI = "https://pypi.org/pypi/{name}/json"


def installed() -> dict[str, str]:
    """canonical name -> version of every distribution in this interpreter's environment."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return dict(sorted(found.items()))


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_ranges(version: Version, ranges: list[dict]) -> bool:
    """OSV-style ranges ([{"events": [{"introduced": "0"}, {"fixed": "1.2"}]}]): inside any of them."""
    for rng in ranges:
        low, inside = None, False
        for event in rng.get("events", []):
            if "introduced" in event:
                low = _version(str(event["introduced"])) or Version("0")
                inside = version >= low
            elif inside and ("fixed" in event or "last_affected" in event):
                bound = _version(str(event.get("fixed") or event.get("last_affected")))
                if bound is not None:
                    inside = version < bound if "fixed" in event else version <= bound
                if inside:
                    return True
                low = None
        if inside:
            return True
    return False


def applies(version: str, advisory: dict) -> bool:
    """Whether `advisory` (PyPI JSON / pip-audit shape: fixed_in, withdrawn, optional ranges)
    covers installed `version`: below the fix of its own branch (same major.minor, else same
    major, else any), and inside the advisory's affected ranges when it gives them."""
    if advisory.get("withdrawn"):
        return False
    v = _version(version)
    if v is None:
        return True  # cannot compare: report rather than hide
    ranges = advisory.get("ranges") or []
    if ranges and not _in_ranges(v, ranges):
        return False
    fixes = [f for f in (_version(str(x)) for x in advisory.get("fixed_in") or []) if f is not None]
    if not fixes:
        return True  # no fixed release: every version listed as affected is
    for same in (lambda f: f.release[:2] == v.release[:2], lambda f: f.release[:1] == v.release[:1]):
        branch = [f for f in fixes if same(f)]
        if branch:
            return v < min(branch)
    return v < min(fixes)


def _finding(name: str, version: str, adv: dict) -> dict:
    return {
        "package": name,
        "version": version,
        "id": adv.get("id", "?"),
        "aliases": sorted(adv.get("aliases") or []),
        "fixed_in": [str(f) for f in adv.get("fixed_in") or adv.get("fix_versions") or []],
        "summary": (adv.get("summary") or adv.get("details") or adv.get("description") or "").strip()[:120],
    }


def run_pip_audit(timeout: float) -> dict | None:
    """pip-audit's findings, or None when it is missing or audited no package (source unreachable)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "-f", "json", "-o", str(out)]
        try:
            subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
            data = json.loads(out.read_text())
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
            return None
    deps = data.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        return None
    findings = []
    for dep in audited:
        for vuln in dep.get("vulns", []):
            adv = {**vuln, "fixed_in": vuln.get("fix_versions", [])}
            findings.append(_finding(dep["name"], dep["version"], adv))
    return {"source": "pip-audit", "audited": len(audited), "not_on_pypi": len(deps) - len(audited),
            "findings": findings, "outdated": []}


def _fetch(name: str, timeout: float) -> tuple[str, dict | None, str]:
    """(name, project JSON or None, "" | "not-found" | "error: ...")."""
    req = urllib.request.Request(PYPI.format(name=name), headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            return name, json.loads(resp.read()), ""
    except urllib.error.HTTPError as exc:
        return name, None, "not-found" if exc.code == 404 else f"error: HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
        return name, None, f"error: {getattr(exc, 'reason', exc)}"


def run_pypi_json(packages: dict[str, str], timeout: float, workers: int) -> dict | None:
    """Advisories from PyPI's project JSON; None when PyPI could not be reached at all."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda n: _fetch(n, timeout), packages))
    if all(status.startswith("error") for _, _, status in results):
        return None
    findings, outdated, audited, missing, errors = [], [], 0, 0, []
    for name, data, status in results:
        if data is None:
            missing += status == "not-found"
            errors += [f"{name}: {status}"] if status.startswith("error") else []
            continue
        audited += 1
        version = packages[name]
        findings += [_finding(name, version, adv) for adv in data.get("vulnerabilities") or []
                     if applies(version, adv)]
        latest, current = _version(data.get("info", {}).get("version", "")), _version(version)
        if latest and current and current < latest:
            outdated.append({"package": name, "version": version, "latest": str(latest)})
    return {"source": "pypi-json", "audited": audited, "not_on_pypi": missing, "errors": errors,
            "findings": findings, "outdated": outdated}


def _print_table(result: dict) -> None:
    rows = [(f["package"], f["version"], f["id"], ",".join(f["fixed_in"]) or "-", ",".join(f["aliases"]))
            for f in result["findings"]]
    if rows:
        head = ("package", "installed", "advisory", "fixed in", "aliases")
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"dep-audit ({result['source']}): {result['audited']} packages audited, "
          f"{result['not_on_pypi']} not on PyPI, {len(result['findings'])} findings"
          + (f", {len(result['outdated'])} older than their latest release" if result["outdated"] else ""))
    if result["outdated"]:
        old = [f"{o['package']} {o['version']} < {o['latest']}" for o in result["outdated"]]
        print("outdated: " + ", ".join(old))
    if result["source"] == "pypi-json":
        print("note: PyPI's project JSON lists the advisories of a project's latest release only; one fixed "
              "before that release is not listed, so the outdated packages are not audited for those")
    for error in result.get("errors", [])[:5]:
        print(f"warning: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 on findings or when no source answered")
    parser.add_argument("--no-pip-audit", action="store_true", help="skip pip-audit, query PyPI's JSON only")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per HTTP request")
    parser.add_argument("--workers", type=int, default=4, help="concurrent PyPI requests")
    args = parser.parse_args(argv)
    packages = installed()
    result = None
    # one probe first: offline, every source fails, and 200 timeouts would stall `make test`
    reachable = not _fetch("pip", args.timeout)[2].startswith("error")
    if reachable and not args.no_pip_audit:
        result = run_pip_audit(timeout=max(60.0, args.timeout * 12))
    if reachable and result is None:
        result = run_pypi_json(packages, args.timeout, max(1, args.workers))
    if result is None:
        print("dep-audit: skipped: no vulnerability source reachable (pip-audit's and PyPI's JSON API)")
        print(json.dumps({"status": "skipped", "packages": len(packages), "findings": []}))
        return 1 if args.strict else 0
    _print_table(result)
    # "ok-limited": the PyPI-JSON fallback, blind to advisories fixed before a project's latest release
    status = "findings" if result["findings"] else "ok" if result["source"] == "pip-audit" else "ok-limited"
    print(json.dumps({"status": status, "packages": len(packages), **result}))
    return 1 if args.strict and result["findings"] else 0


def _main_safe() -> int:
    """`make test` runs this before the tests: an unexpected failure here is one line, not a red CI,
    unless --strict asked for the audit to count."""
    try:
        return main()
    except Exception as exc:  # noqa: BLE001 - reported in one line; strict runs still fail
        print(f"dep-audit: skipped: {type(exc).__name__}: {exc}")
        print(json.dumps({"status": "skipped", "error": f"{type(exc).__name__}: {exc}", "findings": []}))
        return 1 if "--strict" in sys.argv[1:] else 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(_main_safe())
