"""Which Faiss index a corpus gets, as a function of its size and a RAM budget, and how to search it.

Tiers (numbers from bench/retrieval.py and its notes: 384-d vectors sampled from a mixture fitted to
the shipped MiniLM passage embeddings, 2-core CPU):
- `flat` below `flat_below` vectors (100k): exact inner product (= cosine on unit vectors). The
  shipped corpora hold ~4k passages. At 100k an exact query costs 0.4 ms (batched) and IVF1024 is
  only 4x faster at recall@10 0.97: below that, training and approximate answers do not pay.
- `ivf` above: nlist ≈ 4·√N inverted lists (a power of two), centroids from spherical k-means on a
  sample (two-level k-means for nlist ≥ 2048, so training stays minutes, not hours). The lists hold
  the most accurate codec whose bytes fit the RAM budget (default 4 GB, 10% kept as headroom):
  raw vectors (IVF-Flat, 4·d + 8 bytes/vector: up to ~2.3M at 384-d), 8-bit scalar quantizer
  (d + 8: to ~9M), 6-bit (0.75·d + 8: to ~12M), 4-bit (0.5·d + 8: to ~18M), PQ beyond. Measured at
  1M: exhaustive SQ8 recall@10 0.98, SQ6 0.93, SQ4 0.75; PQ96 only 0.54 and OPQ48+PQ48 0.39 (the
  within-cluster spread of the embeddings covers all dimensions, which PQ codes poorly), so PQ is
  the last resort. Exact re-ranking of a shortlist would need the fp32 vectors (15 GB at 10M) in RAM.
- nprobe is tuned against exact search when the index is built (`tune_nprobe`) to reach the recall
  goal; the chosen value and the recall it measured are stored with the index (meta.json).

Why not HNSW: it cannot remove vectors (a changed document's passages must be replaced; that would
mean a rebuild per change), it needs the raw vectors plus the graph (~1.8 KB/vector at 384-d, M=32:
18 GB at 10M), and building it on 2 cores is slow. IVF removes ids in place and takes IDSelector
filters via SearchParametersIVF.

Filters: `search` takes the allowed ids; an IVF search that finds fewer than k allowed vectors in the
probed lists widens nprobe (doubling, up to every list), so a selective filter still gets its top-k.

GPU (faiss-gpu, when `faiss.get_num_gpus() > 0`): `gpu_clone` copies the index to all GPUs for
unfiltered batch search. GPU Faiss has flat, IVF-Flat, IVF-SQ8/SQ4 and IVF-PQ, but not the 6-bit
scalar quantizer and not IDSelector filters, so filtered queries (and SQ6 indexes) always search
the CPU copy. Untested here: this machine has faiss-cpu only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

_ID_BYTES = 8  # every inverted-list entry stores its int64 id
_SQ_BITS = {"SQ8": 8, "SQ6": 6, "SQ4": 4}
_GPU_CODECS = ("Flat", "SQ8", "SQ4")  # GpuIndexIVFScalarQuantizer has no 6-bit type


@dataclass(frozen=True)
class IndexPolicy:
    """How a store picks its index; tests lower `flat_below` to exercise IVF on small data."""

    flat_below: int = 100_000
    ram_budget: int = 4 * 10**9  # bytes for codes + ids; 10% is kept as headroom
    target_recall: float = 0.95  # recall@10 vs exact search that nprobe is tuned to reach
    seed: int = 0


@dataclass(frozen=True)
class IndexSpec:
    """The chosen type and parameters, persisted in meta.json next to the index."""

    kind: str = "flat"  # "flat" | "ivf"
    codec: str = "Flat"  # what the inverted lists store: "Flat" | "SQ8" | "SQ6" | "SQ4" | "PQ<M>"
    nlist: int = 0
    nprobe: int = 0
    sized_for: int = 0  # vector count the type was chosen for
    tuned_recall: float | None = None  # recall@10 vs exact measured when nprobe was tuned

    @property
    def factory_string(self) -> str:
        return "IDMap2,Flat" if self.kind == "flat" else f"IVF{self.nlist},{self.codec}"

    def describe(self) -> str:
        return self.factory_string + (f" nprobe={self.nprobe}" if self.kind == "ivf" else "")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> IndexSpec:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def code_bytes(codec: str, dim: int) -> int:
    """Bytes one vector's code takes in the inverted lists (ids excluded)."""
    if codec == "Flat":
        return 4 * dim
    if codec in _SQ_BITS:
        return math.ceil(dim * _SQ_BITS[codec] / 8)
    if codec.startswith("PQ"):
        return int(codec[2:])
    raise ValueError(f"unknown codec {codec!r}")


def index_bytes(spec: IndexSpec, n: int, dim: int) -> int:
    """Approximate RAM of the index holding n vectors: codes + ids (+ the centroids for IVF)."""
    return n * (code_bytes(spec.codec, dim) + _ID_BYTES) + spec.nlist * dim * 4


def nlist_for(n: int) -> int:
    """Power of two nearest to 4·√n, with at least 39 training points per list (Faiss's minimum)."""
    target = 4 * math.sqrt(max(n, 1))
    nlist = 2 ** round(math.log2(target))
    while nlist > 16 and nlist * 39 > n:
        nlist //= 2
    return max(16, min(nlist, 65536))


def choose(n: int, dim: int, policy: IndexPolicy | None = None, nlist: int | None = None) -> IndexSpec:
    """Index type for n vectors of dimension dim: flat when small, IVF with a codec that fits the budget."""
    policy = policy or IndexPolicy()
    if n < policy.flat_below:
        return IndexSpec("flat", "Flat", sized_for=n)
    per_vector = policy.ram_budget * 0.9 / n
    codecs = ["Flat", "SQ8", "SQ6", "SQ4"] + [f"PQ{m}" for m in (96, 64, 48, 32, 16, 8) if dim % m == 0]
    codec = next((c for c in codecs if code_bytes(c, dim) + _ID_BYTES <= per_vector), codecs[-1])
    nl = nlist or nlist_for(n)
    return IndexSpec("ivf", codec, nlist=nl, nprobe=max(1, nl // 128), sized_for=n)


def tier(spec: IndexSpec) -> int:
    """Order of index types by compression: a store only moves up (flat -> IVF-Flat -> IVF-SQ -> PQ)."""
    if spec.kind == "flat":
        return 0
    return {"Flat": 1, "SQ8": 2, "SQ6": 3, "SQ4": 4}.get(spec.codec, 5)


def create(spec: IndexSpec, dim: int):
    """An empty index (untrained for IVF) that takes explicit int64 ids and supports remove_ids."""
    import faiss

    index = faiss.index_factory(dim, spec.factory_string, faiss.METRIC_INNER_PRODUCT)
    if spec.codec.startswith("PQ"):  # polysemous code ordering only serves Hamming filtering: minutes, unused
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    return index


def train_size(spec: IndexSpec) -> int:
    """Vectors to train on: 40 per list (Faiss warns below 39) and at least 40 per PQ centroid."""
    return max(40 * spec.nlist, 40 * 256 if spec.codec.startswith("PQ") else 0)


def train(index, spec: IndexSpec, sample: np.ndarray, seed: int = 0) -> None:
    """Train the coarse centroids (spherical k-means) and the codec on a sample of vectors."""
    import faiss

    if spec.kind == "flat":
        return
    ivf = faiss.extract_index_ivf(index)
    sample = np.ascontiguousarray(sample[: train_size(spec)], dtype=np.float32)
    if spec.nlist >= 2048:  # one k-means over nlist centroids costs n·nlist·d per iteration
        from faiss.contrib.clustering import two_level_clustering

        centroids, _ = two_level_clustering(
            sample, int(math.sqrt(spec.nlist)), spec.nlist, clustering_niter=10, spherical=True, seed=seed
        )
    else:
        km = faiss.Kmeans(sample.shape[1], spec.nlist, niter=10, spherical=True, seed=seed)
        km.train(sample)
        centroids = km.centroids
    ivf.quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index.train(sample)  # quantizer already holds nlist centroids: this trains only the codec


def add(index, vectors: np.ndarray, ids: np.ndarray) -> None:
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))


def _selector(ids: np.ndarray):
    """An IDSelector for these ids: a bitmap when many (one bit per id), a hash set when few."""
    import faiss

    ids = np.asarray(ids, dtype=np.int64)
    if ids.size <= 4096:
        return faiss.IDSelectorBatch(ids), ids
    bits = np.zeros(int(ids.max()) + 1, dtype=bool)
    bits[ids] = True
    packed = np.packbits(bits, bitorder="little")  # bit i of the map == id i
    return faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed)), packed  # n is in bytes


def search(
    index,
    spec: IndexSpec,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    nprobe: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids), each (nq, k), best first; ids -1 where fewer than k vectors qualify.

    `allowed`: the only ids that may be returned (ticker/date/section filters). IVF searches that
    return fewer than k allowed hits for any query are repeated with twice the nprobe, up to nlist.
    """
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    sel, keepalive = _selector(allowed) if allowed is not None else (None, None)  # noqa: F841 (keeps memory)
    if spec.kind == "flat":
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
        return index.search(queries, k, params=params)
    probe = nprobe or spec.nprobe or 1
    while True:
        params = faiss.SearchParametersIVF(nprobe=probe)
        if sel is not None:
            params.sel = sel
        scores, ids = index.search(queries, k, params=params)
        want = k if allowed is None else min(k, len(allowed))
        if allowed is None or probe >= spec.nlist or (ids >= 0).sum(axis=1).min() >= want:
            return scores, ids
        probe = min(spec.nlist, probe * 2)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """|found top-k ∩ true top-k| / |true top-k| over all queries (the usual ANN recall@k).

    Truth rows may hold fewer than k ids (-1 padded) when a filter admits fewer than k vectors.
    """
    hits = wanted = 0
    for f, t in zip(found, truth, strict=True):
        true_ids = set(t[:k].tolist()) - {-1}
        hits += len(set(f[:k].tolist()) & true_ids)
        wanted += len(true_ids)
    return hits / max(wanted, 1)


def tune_nprobe(
    spec: IndexSpec, found_at: Callable[[int], np.ndarray], truth: np.ndarray, target: float, k: int = 10
) -> IndexSpec:
    """Smallest power-of-two nprobe whose recall@k reaches `target`; `found_at(nprobe)` -> (nq, k) ids.

    When the codec caps recall below the target, the smallest nprobe within 0.005 of the best
    recall measured is kept (probing more lists would cost time and buy nothing).
    """
    if spec.kind == "flat":
        return replace(spec, tuned_recall=1.0)
    results: list[tuple[int, float]] = []
    probe = 1
    while True:
        results.append((probe, recall_at_k(found_at(probe), truth, k)))
        if results[-1][1] >= target or probe >= spec.nlist:
            break
        probe = min(spec.nlist, probe * (4 if results[-1][1] < target - 0.3 else 2))
    best = max(r for _, r in results)
    goal = target if best >= target else best - 0.005
    probe, recall = next((p, r) for p, r in results if r >= goal)
    return replace(spec, nprobe=probe, tuned_recall=round(recall, 4))


def reconstruct(index, spec: IndexSpec, ids: np.ndarray) -> np.ndarray:
    """Stored vectors of these ids, (len(ids), d): exact for flat and IVF-Flat, decoded otherwise."""
    import faiss

    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    if spec.kind == "flat":
        return index.reconstruct_batch(ids)
    ivf = faiss.extract_index_ivf(index)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # ids are not sequential: hash id -> list, offset
    try:
        return index.reconstruct_batch(ids)
    finally:
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)  # it costs RAM and is not kept in sync by us


def build(
    vectors: np.ndarray, ids: np.ndarray, spec: IndexSpec, policy: IndexPolicy | None = None
) -> tuple[object, IndexSpec]:
    """Create, train, fill and (IVF) tune an index over vectors held in memory."""
    policy = policy or IndexPolicy()
    index = create(spec, vectors.shape[1])
    if spec.kind == "ivf":
        rng = np.random.default_rng(policy.seed)
        train(index, spec, vectors[rng.permutation(len(vectors))[: train_size(spec)]], policy.seed)
    add(index, vectors, ids)
    if spec.kind == "ivf":
        spec = tune_on_self(index, spec, vectors, ids, policy)
    return index, spec


def tune_on_self(
    index, spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray, policy: IndexPolicy
) -> IndexSpec:
    """Tune nprobe with 256 stored vectors as queries against exact search, their own id excluded."""
    import faiss

    rng = np.random.default_rng(policy.seed + 1)
    pick = rng.choice(len(vectors), size=min(256, len(vectors)), replace=False)
    queries = np.ascontiguousarray(vectors[pick], dtype=np.float32)
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    _, exact = faiss.knn(queries, base, 11, faiss.METRIC_INNER_PRODUCT)
    own = ids[pick]
    truth = _drop_self(np.where(exact >= 0, ids[exact], -1), own)

    def found_at(nprobe: int) -> np.ndarray:
        return _drop_self(search(index, spec, queries, 11, nprobe=nprobe)[1], own)

    return tune_nprobe(spec, found_at, truth, policy.target_recall)


def _drop_self(found: np.ndarray, own: np.ndarray) -> np.ndarray:
    out = np.full((len(found), found.shape[1] - 1), -1, dtype=np.int64)
    for i, (row, me) in enumerate(zip(found, own, strict=True)):
        kept = row[row != me][: out.shape[1]]
        out[i, : len(kept)] = kept
    return out


def gpu_clone(index, spec: IndexSpec):
    """The index copied to all GPUs for unfiltered search (call its .search), or None (no GPU / no support).

    Untested here (faiss-cpu only). Filtered searches never use it: GPU Faiss indexes do not take
    IDSelector search parameters.
    """
    import faiss

    if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0 or spec.codec not in _GPU_CODECS:
        return None
    try:
        gpu = faiss.index_cpu_to_all_gpus(index)
        if spec.kind == "ivf":  # GPU indexes take nprobe as a setting, not per-call SearchParameters
            faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", spec.nprobe)
        return gpu
    except RuntimeError:  # e.g. an IVF-PQ code size the GPU kernels do not support: stay on CPU
        return None
