"""Reader for OpenChatKit's pre-built Wikipedia index, an external read-only corpus.

OpenChatKit's retrieval (`togethercomputer/OpenChatKit:retrieval/wikipedia.py`) searches the
dataset `ChristophSchuhmann/wikipedia-3sentence-level-retrieval-index`: its `files/` folder holds
`knn.index` (Faiss, ~21M vectors) and `wikipedia-en-sentences.parquet` whose column `text_snippet`
holds the passage of each vector (row i of the parquet <-> Faiss id i). Queries are encoded with
`facebook/contriever-msmarco`: mean pooling of the last hidden states over the attention mask, no
normalisation, and searched as they are. We do the same, so rankings match upstream.

Differences from upstream, and why:
- The parquet is not loaded whole (6.9 GB): rows are read one parquet row group at a time, the
  last few groups cached; the index is memory-mapped read-only as upstream does.
- Each hit carries an exact cosine between the query and the hit's own snippet (both encoded
  here), whatever the index's metric or compression, so `Hit.score` means the same as elsewhere.
- Widening a hit by its neighbouring rows follows upstream (up to `window` rows each side, while
  cosine to the hit > `threshold`, stopping at the first miss) but never crosses the table ends.

The index has no ticker or date metadata: `OkcWikipediaCorpus` queries by text (the query names
the company) and prefers hits that mention the company name or ticker; see `search`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, ModelError
from rag.types import Passage, digest

INDEX_FILE = "knn.index"
PASSAGES_FILE = "wikipedia-en-sentences.parquet"
TEXT_COLUMN = "text_snippet"
OPTIONAL_COLUMNS = ("title", "url")  # read when a parquet has them; OpenChatKit's has only text
ENCODER_HINT = (
    "put a local copy of facebook/contriever-msmarco there (e.g. `huggingface-cli download "
    "facebook/contriever-msmarco --local-dir DIR` on a machine with network access) and set "
    "RESEARCHDESK_OKC_ENCODER=DIR"
)


def mean_pooling(token_embeddings, mask):
    """(batch, tokens, dim), (batch, tokens) -> (batch, dim): mean over the unmasked tokens."""
    token_embeddings = token_embeddings.masked_fill(~mask[..., None].bool(), 0.0)
    return token_embeddings.sum(dim=1) / mask.sum(dim=1)[..., None]


class MeanPoolEncoder:
    """A local Hugging Face encoder (AutoModel) with OpenChatKit's mean pooling; offline only."""

    def __init__(self, path: Path, device: str = "cpu", batch_size: int = 32):
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"query encoder not found at {path} (no config.json): {ENCODER_HINT}")
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot load the query encoder ({exc}); {ENCODER_HINT}") from exc
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)
        # upstream truncates at the tokenizer's limit; cap by the model's positions too, since a
        # tokenizer saved without model_max_length reports ~1e30
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = int(min(self.tokenizer.model_max_length, limit))

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, unnormalised, as OpenChatKit feeds them to Faiss."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                inputs = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                ).to(self.device)
                hidden = self.model(**inputs)[0]
                pooled = mean_pooling(hidden, inputs["attention_mask"])
                out[start : start + len(batch)] = pooled.float().cpu().numpy()
        return out


class PassageTable:
    """Faiss id -> row of the passages parquet(s), read one row group at a time (LRU of 8 groups)."""

    def __init__(self, files: list[Path]):
        import pyarrow.parquet as pq

        self.files = files
        self._groups: list[tuple[int, int, int, int]] = []  # (first row, rows, file no, group no)
        start = 0
        self.columns: list[list[str]] = []
        for n, f in enumerate(files):
            meta = pq.ParquetFile(f).metadata
            names = set(meta.schema.names)
            self.columns.append([TEXT_COLUMN, *(c for c in OPTIONAL_COLUMNS if c in names)])
            for g in range(meta.num_row_groups):
                rows = meta.row_group(g).num_rows
                self._groups.append((start, rows, n, g))
                start += rows
        self.rows = start
        self._starts = np.array([g[0] for g in self._groups], dtype=np.int64)
        self._read = lru_cache(maxsize=8)(self._read_group)

    def _read_group(self, file_no: int, group_no: int) -> dict[str, list]:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(self.files[file_no], memory_map=True).read_row_group(
            group_no, columns=self.columns[file_no]
        )
        return table.to_pydict()

    def get(self, rows: list[int]) -> dict[int, dict[str, str]]:
        """Records (text_snippet [, title, url]) by row id; reads each needed row group once."""
        out: dict[int, dict[str, str]] = {}
        for row in sorted(set(rows)):
            if not 0 <= row < self.rows:
                raise IndexError(f"row {row} outside the passage table (0..{self.rows - 1})")
            start, _, file_no, group_no = self._groups[int(np.searchsorted(self._starts, row, "right")) - 1]
            group = self._read(file_no, group_no)
            out[row] = {c: str(v[row - start] or "") for c, v in group.items()}
        return out


@dataclass(frozen=True)
class OkcHit:
    row: int  # Faiss id = parquet row of the hit
    score: float  # cosine(query, hit snippet), both mean-pooled by the encoder
    index_score: float  # what Faiss returned: inner product, or squared L2 distance for L2 indexes
    text: str  # the hit's snippet, widened by neighbours when asked
    first_row: int  # rows first_row..last_row make up `text`
    last_row: int
    title: str = ""
    url: str = ""


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


class OkcWikipediaIndex:
    """`knn.index` + passages parquet in one folder, searched with its own query encoder."""

    def __init__(self, index_dir: Path, encoder: MeanPoolEncoder):
        import faiss

        index_dir = Path(index_dir)
        index_path = index_dir / INDEX_FILE
        where = (
            "point RESEARCHDESK_OKC_INDEX_DIR at the folder holding knn.index and "
            f"{PASSAGES_FILE} (the dataset's files/ folder)"
        )
        if not index_path.is_file():
            raise ConfigError(f"{index_path} not found: {where}")
        self.files = self._passage_files(index_dir, where)
        try:  # memory-mapped like upstream; index types without mmap support are read normally
            self.index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            try:
                self.index = faiss.read_index(str(index_path))
            except RuntimeError as exc:
                raise ConfigError(f"{index_path}: not a Faiss index ({exc})") from exc
        if self.index.d != encoder.dim:
            raise ConfigError(
                f"{index_path} holds {self.index.d}-dimensional vectors but the query encoder "
                f"{encoder.path} makes {encoder.dim}-dimensional ones: the index must be searched with "
                "the encoder that built it (facebook/contriever-msmarco, 768-d, for OpenChatKit's)"
            )
        self.table = PassageTable(self.files)
        if self.table.rows != self.index.ntotal:
            sizes = ", ".join(f.name for f in self.files)
            raise ConfigError(
                f"{index_path} has {self.index.ntotal} vectors but {sizes} hold {self.table.rows} "
                "passages: they must be the matching pair (row i of the parquet is vector i)"
            )
        self.encoder = encoder
        self.path = index_dir
        self.signature = digest(
            f"{index_path.stat().st_size}:{self.index.ntotal}:{self.index.d}:{self.index.metric_type}:"
            + ",".join(f"{f.name}:{f.stat().st_size}" for f in self.files)
            + f":{encoder.path.name}"
        )

    @staticmethod
    def _passage_files(index_dir: Path, where: str) -> list[Path]:
        import pyarrow.parquet as pq

        if (index_dir / PASSAGES_FILE).is_file():
            return [index_dir / PASSAGES_FILE]
        found = sorted(index_dir.glob("*.parquet"))
        usable = [f for f in found if TEXT_COLUMN in pq.ParquetFile(f).schema_arrow.names]
        if not usable:
            listed = ", ".join(f.name for f in found) or "none"
            raise ConfigError(
                f"{index_dir}: no parquet with a {TEXT_COLUMN!r} column (parquet files: {listed}); {where}"
            )
        return usable

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, texts: list[str], k: int) -> list[list[OkcHit]]:
        """Top-k hits per query in the index's own order (as upstream), each with its cosine."""
        if not texts:
            return []
        queries = self.encoder.encode(texts)
        k = max(1, min(k, len(self)))
        scores, ids = self.index.search(queries, k)
        rows = sorted({int(r) for r in ids.ravel() if r >= 0})
        records = self.table.get(rows)
        vectors = dict(zip(rows, self.encoder.encode([records[r][TEXT_COLUMN] for r in rows]), strict=True))
        out: list[list[OkcHit]] = []
        for q, row_ids, row_scores in zip(queries, ids, scores, strict=True):
            hits = []
            for row, raw in zip(row_ids, row_scores, strict=True):
                if row < 0:  # Faiss pads with -1 when fewer than k vectors are reachable
                    continue
                r = int(row)
                rec = records[r]
                score = _cos(q, vectors[r])
                text, title, url = rec[TEXT_COLUMN], rec.get("title", ""), rec.get("url", "")
                hits.append(OkcHit(r, score, float(raw), text, r, r, title, url))
            out.append(hits)
        return out

    def widen(self, hit: OkcHit, window: int = 5, threshold: float = 0.5) -> OkcHit:
        """Join neighbouring snippets whose cosine to the hit exceeds `threshold`, as upstream does."""
        if window <= 0:
            return hit
        lo, hi = max(0, hit.row - window), min(len(self) - 1, hit.row + window)
        rows = list(range(lo, hi + 1))
        records = self.table.get(rows)
        vecs = dict(zip(rows, self.encoder.encode([records[r][TEXT_COLUMN] for r in rows]), strict=True))
        first = last = hit.row
        while first - 1 >= lo and _cos(vecs[first - 1], vecs[hit.row]) > threshold:
            first -= 1
        while last + 1 <= hi and _cos(vecs[last + 1], vecs[hit.row]) > threshold:
            last += 1
        text = " ".join(records[r][TEXT_COLUMN].strip() for r in range(first, last + 1))
        return OkcHit(hit.row, hit.score, hit.index_score, text, first, last, hit.title, hit.url)


def _name_terms(names: tuple[str, ...]) -> list[re.Pattern]:
    """ "Apple Inc." -> "Apple", "Amazon.com, Inc." -> "Amazon", "AAPL" -> "AAPL" (whole words)."""
    terms = []
    for name in names:
        head = re.split(r"[\s,.]+", name.strip())[0] if name.strip() else ""
        if len(head) >= 2:
            terms.append(re.compile(rf"\b{re.escape(head)}\b", re.I))
    return terms


class OkcWikipediaCorpus:
    """Serves report retrieval's `wikipedia` corpus from an OpenChatKit index (see rag/retrieve.py).

    No ticker metadata, so: the query text already names the company; we fetch `overfetch` x k
    hits and take first those that mention the company's name or ticker as a whole word, then the
    rest in index order. The chosen hits are widened like upstream. Passages carry ticker "" (the
    index is general background), no date (so as-of filters keep them), and an id per index row.
    """

    corpus = "wikipedia"

    def __init__(self, index: OkcWikipediaIndex, window: int = 5, threshold: float = 0.5, overfetch: int = 4):
        self.index = index
        self.window = window
        self.threshold = threshold
        self.overfetch = max(1, overfetch)
        self.signature = index.signature

    def search(
        self, texts: list[str], k: int, names: tuple[str, ...] = ()
    ) -> list[list[tuple[Passage, float]]]:
        terms = _name_terms(names)
        out = []
        for hits in self.index.search(texts, k * self.overfetch):
            ranked = sorted(hits, key=lambda h: not any(t.search(h.text) for t in terms))[:k]
            out.append(
                [(self.passage(self.index.widen(h, self.window, self.threshold)), h.score) for h in ranked]
            )
        return out

    def passage(self, hit: OkcHit) -> Passage:
        title = f"Wikipedia: {hit.title}" if hit.title else "Wikipedia (OpenChatKit index)"
        return Passage(
            passage_id=f"okc-wikipedia:{hit.first_row}-{hit.last_row}:{digest(hit.text, 8)}",
            doc_id=f"okc-wikipedia:{self.index.path.name}",
            corpus="wikipedia",
            ticker="",
            source="wikipedia",
            form="wiki",
            date="",
            section="",
            title=title,
            url=hit.url,
            text=hit.text,
            ordinal=hit.row,
        )


def open_okc_corpus(
    index_dir: Path, encoder_dir: Path | None, window: int = 5, threshold: float = 0.5
) -> OkcWikipediaCorpus:
    """The corpus the report flow plugs in when `okc_index_dir` is set (ConfigError if half-set)."""
    if encoder_dir is None:
        raise ConfigError(
            f"RESEARCHDESK_OKC_INDEX_DIR is set ({index_dir}) but RESEARCHDESK_OKC_ENCODER is not: "
            + ENCODER_HINT
        )
    return OkcWikipediaCorpus(OkcWikipediaIndex(index_dir, MeanPoolEncoder(encoder_dir)), window, threshold)
