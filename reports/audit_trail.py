"""Tamper evidence for report runs: digests of every file, inputs pinned per report, a hash chain.

Why: a report is evidence of what the run wrote from what inputs; anyone editing a report, a chart,
a manifest record or a recorded completion afterwards must be caught. finish_run (flows/run_record.py)
lists every file with its sha256 and size, pins each report's inputs (context, completions,
verdicts) and chains the manifest to the previous run's; `verify_run` checks all of it and
`rerender` rebuilds a report from its recorded inputs through the real assemble/publish path.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.batch import read_completions
from models.types import Completion
from rag.atomic import sha256_hex
from reports.assemble import assemble_report
from reports.checks import Encode
from reports.context import TickerContext
from reports.model import Verdict
from reports.publish import publish_report

MANIFEST = "manifest.json"


def canonical(obj: object) -> str:
    """One spelling of a JSON value (sorted keys, no spaces), so digests do not depend on indentation."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def completion_digest(c: Completion) -> str:
    return sha256_hex(canonical(asdict(c)))


def verdict_digest(v: dict | None) -> str:  # None: no verdict recorded (digest of null)
    return sha256_hex(canonical(v))


def chain_hash(manifest: dict, previous_chain: str) -> str:
    """sha256(previous chain_sha256 + this manifest's canonical content without its own chain hash)."""
    body = {k: v for k, v in manifest.items() if k != "chain_sha256"}
    return sha256_hex(previous_chain + canonical(body))


def file_table(run_dir: Path) -> dict[str, dict]:
    """{relative path: {sha256, bytes}} of every file in the run folder but the manifest itself."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and not path.is_symlink() and rel != MANIFEST and ".tmp" not in path.name:
            data = path.read_bytes()
            out[rel] = {"sha256": sha256_hex(data), "bytes": len(data)}
    return out


def previous_link(reports_dir: Path, run_id: str) -> dict | None:
    """The run `latest` points at (before this run moves it), else the newest other run with a manifest."""
    latest = reports_dir / "latest"
    candidates = []
    if latest.is_symlink() and latest.resolve().name != run_id:
        candidates.append(latest.resolve())
    others = [p.parent for p in reports_dir.glob(f"*/{MANIFEST}") if p.parent.name not in (run_id, "latest")]
    candidates += sorted(others, key=lambda d: (d / MANIFEST).stat().st_mtime, reverse=True)
    for d in candidates:
        path = d / MANIFEST
        if path.is_file():
            raw = path.read_bytes()
            chain = json.loads(raw).get("chain_sha256", "")
            return {"run_id": d.name, "manifest_sha256": sha256_hex(raw), "chain_sha256": chain}
    return None


@dataclass
class AuditResult:
    run_id: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (what, ok, detail)

    @property
    def problems(self) -> list[str]:
        return [f"{what}: {detail}" for what, ok, detail in self.checks if not ok]

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append((what, ok, detail))


def manifest_dict(run_dir: Path) -> dict:
    """A run's manifest as parsed JSON (not RunManifest): digests are over the exact recorded dict."""
    from rag.errors import SourceError

    path = run_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: not a readable run manifest ({exc}); pass a finished run folder") from exc


def _check_files(run_dir: Path, manifest: dict, result: AuditResult) -> None:
    for rel, meta in manifest.get("files", {}).items():
        path = run_dir / rel
        if not path.is_file():
            result.add(f"file {rel}", False, "missing")
            continue
        digest = sha256_hex(path.read_bytes())
        result.add(
            f"file {rel}", digest == meta["sha256"], "" if digest == meta["sha256"] else "digest differs"
        )


def _check_chain(run_dir: Path, manifest: dict, result: AuditResult) -> None:
    prev = manifest.get("previous")
    ok = chain_hash(manifest, (prev or {}).get("chain_sha256", "")) == manifest.get("chain_sha256")
    result.add("manifest chain_sha256", ok, "" if ok else "manifest.json was edited after the run")
    for ticker, digest in manifest.get("records_sha256", {}).items():
        ok = sha256_hex(canonical(manifest["tickers"].get(ticker))) == digest
        result.add(f"record {ticker}", ok, "" if ok else "manifest record was edited")
    if prev is None:
        result.add("previous run", True, "none (first run of this folder)")
        return
    path = run_dir.parent / prev["run_id"] / MANIFEST
    if not path.is_file():
        result.add(f"previous run {prev['run_id']}", False, f"{path} is missing")
        return
    raw = path.read_bytes()
    ok = (
        sha256_hex(raw) == prev["manifest_sha256"]
        and json.loads(raw).get("chain_sha256") == prev["chain_sha256"]
    )
    result.add(
        f"previous run {prev['run_id']}", ok, "" if ok else "its manifest.json differs from the one chained"
    )


def _check_inputs(run_dir: Path, manifest: dict, result: AuditResult) -> None:
    comps_path, verdicts_path = run_dir / "audit" / "completions.jsonl", run_dir / "audit" / "moderation.json"
    completions = read_completions(comps_path) if comps_path.is_file() else {}
    verdicts = json.loads(verdicts_path.read_text()) if verdicts_path.is_file() else {}
    for ticker, record in manifest.get("tickers", {}).items():
        inputs = record.get("inputs")
        if not inputs:
            continue
        ctx = run_dir / inputs["context"]["path"]
        bad = (
            []
            if ctx.is_file() and sha256_hex(ctx.read_bytes()) == inputs["context"]["sha256"]
            else ["context"]
        )
        bad += [
            f"completion {rid}"
            for rid, d in inputs["completions"].items()
            if rid not in completions or completion_digest(completions[rid]) != d
        ]
        bad += [
            f"verdict {rid}"
            for rid, d in inputs["verdicts"].items()
            if verdict_digest(verdicts.get(rid)) != d
        ]
        result.add(f"inputs {ticker}", not bad, ", ".join(bad) + " differ from the record" if bad else "")


def verify_run(run_dir: Path) -> AuditResult:
    """Every check of a run folder; lists every problem found, not just the first."""
    run_dir = Path(run_dir).resolve()
    manifest = manifest_dict(run_dir)
    result = AuditResult(run_id=manifest.get("run_id", run_dir.name))
    if manifest.get("schema_version", 1) < 2:
        result.add(
            "manifest schema", False, "schema_version 1 records no file digests or chain; cannot audit"
        )
        return result
    _check_files(run_dir, manifest, result)
    _check_chain(run_dir, manifest, result)
    _check_inputs(run_dir, manifest, result)
    return result


def rerender(run_dir: Path, ticker: str, encode: Encode | None) -> dict[str, bytes]:
    """A report's files rebuilt from its recorded context, completions, verdicts and generated_at,
    through assemble_report and publish_report as the publish task ran them; {file name: bytes}."""
    from rag.errors import SourceError

    run_dir = Path(run_dir).resolve()
    manifest = manifest_dict(run_dir)
    record = manifest.get("tickers", {}).get(ticker)
    if not record or not record.get("inputs"):
        raise SourceError(f"{run_dir / MANIFEST}: no recorded inputs for {ticker}; pick a published ticker")
    inputs = record["inputs"]
    ctx = TickerContext.model_validate_json((run_dir / inputs["context"]["path"]).read_text())
    every = read_completions(run_dir / "audit" / "completions.jsonl")
    completions = {rid: every[rid] for rid in inputs["completions"] if rid in every}
    raw = json.loads((run_dir / "audit" / "moderation.json").read_text())
    verdicts = {rid: Verdict(**raw[rid]) for rid in inputs["verdicts"] if rid in raw}
    report = assemble_report(
        ctx,
        completions,
        verdicts,
        manifest["run_id"],
        record["model"],
        encode=encode,
        generated_at=record["generated_at"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        written = publish_report(report, Path(tmp))
        return {Path(p).name: Path(p).read_bytes() for p in written}


def rerender_check(run_dir: Path, ticker: str, encode: Encode | None, result: AuditResult) -> None:
    """Add one check per re-rendered file: same bytes as the digest the run recorded."""
    files = manifest_dict(Path(run_dir).resolve()).get("files", {})
    for name, data in rerender(run_dir, ticker, encode).items():
        ok = files.get(name, {}).get("sha256") == sha256_hex(data)
        result.add(f"re-render {name}", ok, "" if ok else "differs from the recorded file")
