"""Bad-input matrix (issue 15): each row is (name, input, expected one-line error or flag).

Boundaries: CLI arguments (in-process, `flows.cli.main`), files at ingest (gzip bomb, PDF page
cap), model output (sanitizer bound). No traceback, never a crash; caps come from rag/limits.py.
"""

from __future__ import annotations

import gzip
import resource
import shutil
import time
from pathlib import Path

import pytest

import flows.cli as cli
from rag.errors import SourceError
from rag.limits import MAX_DECOMPRESSED_BYTES, MAX_MODEL_TEXT_CHARS, MAX_PDF_PAGES
from rag.sources import collect_skips
from rag.sources.html_text import decompress
from reports.sanitize import sanitize_model_text

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at a data folder with SEC's real company_tickers list only."""
    for key in [k for k in __import__("os").environ if k.startswith("RESEARCHDESK_")]:
        monkeypatch.delenv(key)
    (tmp_path / "data" / "sec").mkdir(parents=True)
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "data" / "sec")
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    return tmp_path


CLI_ROWS = [  # (name, argv, extra env, exit code, regex on the one stderr line)
    ("path ticker", ["report", "../etc"], {}, 2, r"'\.\./etc' is not a ticker"),
    ("unknown ticker", ["report", "ZZZZQ"], {}, 2, r"ZZZZQ: not an SEC-registered ticker"),
    ("month 13", ["report", "AAPL", "--as-of", "2024-13-45"], {}, 2, r"must be a date like"),
    ("not a date", ["run", "--as-of", "yesterday"], {}, 2, r"must be a date like"),
    ("bad policy json", ["report", "ZZZZQ"], {"RESEARCHDESK_MODERATION_POLICY": "{bad"}, 2,
     r"RESEARCHDESK_MODERATION_POLICY"),
]


@pytest.mark.parametrize("name, argv, extra, code, pattern", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_row(name, argv, extra, code, pattern, env, monkeypatch, capsys):
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) if argv[-2:-1] == ["--as-of"] else _nothing() as raised:
        rc = cli.main(argv)
    rc = raised.value.code if raised is not None else rc
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(pattern, err), err


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_gzip_bomb_is_refused_with_bounded_memory(tmp_path: Path):
    """1 GB of zeros compressed to ~1 MB: refused at the cap, never fully decompressed."""
    bomb = tmp_path / "bomb.html.gz"
    zeros = bytes(16 * 2**20)
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        for _ in range(64):
            f.write(zeros)
    assert bomb.stat().st_size < 2 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(SourceError, match=r"expands past 256 MB.*MAX_DECOMPRESSED_BYTES"):
        decompress(bomb.read_bytes(), bomb)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < 2 * MAX_DECOMPRESSED_BYTES + 64 * 2**20, grown  # bounded by the cap, not 1 GB


def test_binary_garbage_named_gz_is_one_line(tmp_path: Path):
    junk = tmp_path / "x.html.gz"
    junk.write_bytes(b"\x00\xff" * 1000)
    with pytest.raises(SourceError, match="named .gz but is not gzip data"):
        decompress(junk.read_bytes(), junk)


def test_pdf_page_cap(tmp_path: Path):
    pdfium = pytest.importorskip("pypdfium2")
    from rag.sources.pdf_text import page_lines

    doc = pdfium.PdfDocument.new()
    for _ in range(MAX_PDF_PAGES + 5):
        doc.new_page(200, 200)
    path = tmp_path / "big.pdf"
    doc.save(str(path))
    doc.close()
    with collect_skips() as skips:
        pages = page_lines(path.read_bytes(), path)
    assert len(pages) == MAX_PDF_PAGES
    assert any(f"{MAX_PDF_PAGES + 5} pages, read the first {MAX_PDF_PAGES}" in s for s in skips), skips


MODEL_ROWS = [  # (name, model output, substring that must not survive)
    ("script tag", "Revenue rose [1]. <script>alert(1)</script>", "<script"),
    ("javascript link", "See [this](javascript:alert(1)) [1].", "javascript:"),
    ("encoded script", "&lt;script&gt;alert(1)&lt;/script&gt;", "<script"),
]


@pytest.mark.parametrize("name, text, banned", MODEL_ROWS, ids=[r[0] for r in MODEL_ROWS])
def test_model_output_row(name, text, banned):
    assert banned not in sanitize_model_text(text).lower()


def test_ten_mb_model_output_is_cut_quickly():
    text = "Revenue rose 5% [1]. " * (10 * 2**20 // 21)
    started = time.perf_counter()
    out = sanitize_model_text(text)
    assert time.perf_counter() - started < 2.0
    assert len(out) <= MAX_MODEL_TEXT_CHARS


def test_empty_model_output_is_empty():
    assert sanitize_model_text("") == ""
