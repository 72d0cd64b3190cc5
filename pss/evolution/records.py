"""The loss records of a run (PSE-Net Eq. 17-18) and their band view (Eq. 19).

Every training strategy logs each trained non-max subnet's cross-entropy per
step in the snapshots' ``samples``; :class:`LossRecords` is that collection
L, :func:`band_records` the part of it whose structures lie in one budget
band, normalised as Eq. 19 intends (:func:`proxy_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import PssError
from ..problem.budgets import Budget
from ..problem.space import Structure, StructureSpace
from ..sampling.marginals import CostArrayFn, gene_indices


@dataclass
class LossRecords:
    """The loss collection L of Eq. 17-18: one row per (training step, sampled subnet).

    Same layout as a snapshot's ``samples`` field: ``keys`` are structure keys,
    ``key[i]`` indexes ``keys``, ``loss[i]`` is the subnet's training CE at
    ``step[i]`` and ``max_loss[i]`` the max subnet's CE at that step.
    ``source`` says where the rows came from: ``"samples"`` (per-step records
    the trainer wrote), ``"pool"`` (pool entries of the snapshots, for runs
    without ``samples``) or ``"none"``.
    """

    keys: list[str]
    key: np.ndarray
    step: np.ndarray
    loss: np.ndarray
    max_loss: np.ndarray
    source: str = "samples"
    _parsed: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = np.asarray(self.key, dtype=np.int64)
        self.step = np.asarray(self.step, dtype=np.int64)
        self.loss = np.asarray(self.loss, dtype=np.float64)
        self.max_loss = np.asarray(self.max_loss, dtype=np.float64)
        n = len(self.key)
        if not (len(self.step) == len(self.loss) == len(self.max_loss) == n):
            raise PssError("loss records: step, key, loss and max_loss must have one value per row")
        if n and (self.key.min() < 0 or self.key.max() >= len(self.keys)):
            raise PssError("loss records: a key index points outside keys")

    def __len__(self) -> int:
        return len(self.key)

    @classmethod
    def empty(cls, source: str = "none") -> "LossRecords":
        return cls([], [], [], [], [], source)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Structure | str, float, float, int]], source: str = "samples") -> "LossRecords":
        """Rows of (structure or key, loss, max_loss, step)."""
        keys: list[str] = []
        index: dict[str, int] = {}
        key, step, loss, max_loss = [], [], [], []
        for s, l, ml, st in rows:
            k = s.key if isinstance(s, Structure) else str(s)
            if k not in index:
                index[k] = len(keys)
                keys.append(k)
            key.append(index[k])
            loss.append(l)
            max_loss.append(ml)
            step.append(st)
        return cls(keys, key, step, loss, max_loss, source)

    @property
    def final_max_loss(self) -> float:
        """L_max^T of Eq. 19: the max subnet's loss at the last recorded step (mean if several rows)."""
        if not len(self):
            return float("nan")
        last = self.step == self.step.max()
        return float(np.mean(self.max_loss[last]))


def _concat(parts: list[LossRecords], source: str) -> LossRecords:
    keys: list[str] = []
    index: dict[str, int] = {}
    key, step, loss, max_loss = [], [], [], []
    for p in parts:
        remap = np.empty(len(p.keys), dtype=np.int64)
        for i, k in enumerate(p.keys):
            if k not in index:
                index[k] = len(keys)
                keys.append(k)
            remap[i] = index[k]
        key.append(remap[p.key] if len(p) else p.key)
        step.append(p.step)
        loss.append(p.loss)
        max_loss.append(p.max_loss)
    if not keys:
        return LossRecords.empty(source)
    return LossRecords(keys, np.concatenate(key), np.concatenate(step), np.concatenate(loss), np.concatenate(max_loss), source)


def records_from_snapshots(snapshots: Sequence[dict[str, Any]]) -> LossRecords:
    """The loss records of a run from its snapshots (oldest first).

    Snapshots with the optional ``samples`` field (one row per training step and
    sampled subnet) give Eq. 17-18 directly. For older runs without it, the
    pool entries stand in: an entry (key, m) gives loss = -m (m is the moving
    average of -batch CE, Alg. 3) and max_loss = that epoch's mean CE of the
    max subnet. An entry that did not change since the previous snapshot (same
    m and times sampled) carries no new measurement and is counted once, at the
    epoch where it was last updated.
    """
    with_samples = [s for s in snapshots if isinstance(s.get("samples"), dict)]
    if with_samples:
        parts = []
        for snap in with_samples:
            smp = snap["samples"]
            try:
                parts.append(LossRecords(list(smp["keys"]), smp["key"], smp["step"], smp["loss"], smp["max_loss"], "samples"))
            except (KeyError, TypeError, ValueError) as exc:
                raise PssError(f"snapshot of epoch {snap.get('epoch')}: malformed 'samples' field ({exc})") from None
        return _concat(parts, "samples")
    rows = []
    previous: dict[str, tuple[float, int]] = {}
    for snap in snapshots:
        max_loss = float((snap.get("losses") or {}).get("max", float("nan")))
        step = int(snap.get("step", snap.get("epoch", 0)))
        current: dict[str, tuple[float, int]] = {}
        for pool in snap.get("pools", []):
            for e in pool.get("entries", []):
                sig = (float(e["m"]), int(e.get("times_sampled", 0)))
                current[e["key"]] = sig
                if previous.get(e["key"]) != sig:
                    rows.append((e["key"], -sig[0], max_loss, step))
        previous = current
    return LossRecords.from_rows(rows, source="pool") if rows else LossRecords.empty()


def proxy_loss(loss: np.ndarray, max_loss: np.ndarray, final_max_loss: float) -> np.ndarray:
    """Eq. 19, as the text intends: p_i^t = L_i^t * L_max^T / L_max^t.

    The supernet keeps improving, so a raw loss from step t is not comparable
    with one from step T. Dividing by the max subnet's loss at the *same* step
    removes that trend (and the difficulty of that batch) and multiplying by
    L_max^T puts every record on the scale of the end of training. The printed
    Eq. 19 multiplies by L_max^t / L_max^T instead, which makes early records
    look *worse* by the same factor; a subnet that stays 10% behind the max
    subnet all through training would get very different proxy losses.
    """
    return np.asarray(loss, dtype=np.float64) * float(final_max_loss) / np.asarray(max_loss, dtype=np.float64)


def _record_arrays(records: LossRecords, space: StructureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_keys_to_arrays` of a record set's keys, parsed once per space (every band reuses them)."""
    if space not in records._parsed:
        records._parsed[space] = _keys_to_arrays(records.keys, space)
    return records._parsed[space]


def _keys_to_arrays(keys: Sequence[str], space: StructureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(widths (u, L), resolutions (u,), valid (u,) bool): parse keys; keys outside S are invalid."""
    L = len(space)
    widths = np.zeros((len(keys), L), dtype=np.int64)
    res = np.full(len(keys), space.resolutions[0], dtype=np.int64)
    valid = np.zeros(len(keys), dtype=bool)
    for i, k in enumerate(keys):
        try:
            s = Structure.from_key(k)
        except PssError:
            continue
        if space.contains(s):
            widths[i], res[i], valid[i] = s.widths, s.resolution, True
    return widths, res, valid


@dataclass
class BandRecords:
    """The records of one budget band, with what Eq. 19-20 derive from them."""

    keys: list[str]              # unique structure keys in the band
    key: np.ndarray              # per row, index into keys
    normalised: np.ndarray       # per row, rho = L_i^t / L_max^t
    proxy: np.ndarray            # per row, p_i^t of Eq. 19 (as intended)
    gene_index: np.ndarray       # per unique key, index of each gene's value (u, genes)
    final_max_loss: float

    def __len__(self) -> int:
        return len(self.key)

    def ranked_keys(self) -> list[str]:
        """Unique keys by mean proxy loss, best (lowest) first: 'the top p_i^t' of Sec. 3.4."""
        if not len(self):
            return []
        sums = np.bincount(self.key, weights=self.proxy, minlength=len(self.keys))
        counts = np.bincount(self.key, minlength=len(self.keys))
        mean = sums / np.maximum(counts, 1)
        return [self.keys[i] for i in np.lexsort((np.arange(len(self.keys)), mean))]


def band_records(records: LossRecords, space: StructureSpace, cost_fn: CostArrayFn, band: Budget) -> BandRecords:
    """Rows of ``records`` whose structure is in S and whose cost lies in the band (eps = eps_0)."""
    final = records.final_max_loss
    widths, res, valid = _record_arrays(records, space)
    ok_key = valid.copy()
    if valid.any():
        ok_key[valid] = band.contains_array(cost_fn(widths[valid], res[valid]))
    rows = np.zeros(len(records), dtype=bool)
    if len(records):
        finite = np.isfinite(records.loss) & np.isfinite(records.max_loss) & (records.max_loss > 0)
        rows = ok_key[records.key] & finite
    used = np.flatnonzero(ok_key)
    remap = np.full(len(records.keys), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    key = remap[records.key[rows]]
    normalised = records.loss[rows] / records.max_loss[rows]
    return BandRecords(
        keys=[records.keys[i] for i in used],
        key=key,
        normalised=normalised,
        proxy=proxy_loss(records.loss[rows], records.max_loss[rows], final) if rows.any() else normalised,
        gene_index=gene_indices(space, widths[used], res[used]),
        final_max_loss=final,
    )
