"""`ratings`: pairs from rated candidates (UltraFeedback and the generic prompt + candidates form).
The candidates of one record compete, and every policy is a few NumPy sorts over the whole `rated`
table (no Python per prompt, no join): rows are grouped by prompt and ranked inside their group;
two texts are compared in full only when their normalized forms have the same length.

Texts are compared after whitespace normalization, and the tie rule holds inside the policy: a
pair needs a strictly higher score on the chosen side and a different text, so equal scores or
identical texts never make a pair. Policies:

* `best_vs_worst`: the best candidate (highest score, first on ties) vs the lowest-scored one
  whose text differs from the best's (the last listed on ties);
* `best_vs_random`: the best vs a seeded random draw among the lower-scored candidates with a
  different text (the Tulu 3 recipe); the draw hashes the seed and the two responses, so it does
  not depend on the file's name or order;
* `all_pairs`: every (higher, lower) pair with different texts; `filters.min_margin.ratings`
  then keeps those above a margin.

Every candidate that ends in no pair gets the reason in the ledger."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.columns import per_value
from pipeline.config import RatingsSignalConfig
from pipeline.hashing import normalize_ws
from pipeline.schema import conform
from pipeline.signals.result import SignalResult

# The draw of best_vs_random: the MD5 of the seed and of both normalized texts' MD5s.
DRAW_SQL = """
SELECT arg_min(row, md5_number(concat($seed, ':', md5_number(best), ':', md5_number(norm))))
FROM lower GROUP BY grp
"""


class _Groups:
    """The rated rows grouped by prompt: `of` (each row's group), and per group its size, best row
    (highest score, then lowest candidate number), highest and lowest score."""

    def __init__(self, rated: pa.Table):
        self.of = pc.dictionary_encode(rated["prompt_key"]).combine_chunks().indices.to_numpy()
        self.score = rated["score"].to_numpy()
        self.k = rated["candidate"].to_numpy()
        self.norm = normalize_ws(rated["response"])  # the form texts are compared in
        self.length = pc.binary_length(self.norm).to_numpy()
        order = np.lexsort((self.k, -self.score, self.of))
        starts = np.flatnonzero(np.diff(self.of[order], prepend=-1))
        self.best = order[starts]
        self.size = np.diff(np.append(starts, len(order)))
        self.hi = self.score[self.best]
        self.lo = np.minimum.reduceat(self.score[order], starts)
        best_of_row = self.best[self.of]
        # the candidates a pair with the best may reject: lower-scored, another text
        other_text = ~self.same_text(np.arange(rated.num_rows), best_of_row)
        self.lower = np.flatnonzero((self.score < self.hi[self.of]) & other_text)

    def same_text(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether rows a[i] and b[i] hold the same normalized text: only rows of equal length are
        compared, so few texts are copied."""
        same = self.length[a] == self.length[b]
        at = np.flatnonzero(same)
        if len(at):
            same[at] = pc.equal(self.norm.take(a[at]), self.norm.take(b[at])).to_numpy(zero_copy_only=False)
        return same

    def first_per_group(self, rows: np.ndarray, *keys: np.ndarray) -> np.ndarray:
        """Of `rows`, the first of each group when sorted by `keys` (the last key sorts first)."""
        order = rows[np.lexsort((*keys, self.of[rows]))]
        return order[np.diff(self.of[order], prepend=-1) != 0]


def _picks(groups: _Groups, cfg: RatingsSignalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(chosen rows, rejected rows) of the policy's pairs, in file order of (chosen, rejected)."""
    g, lower = groups, groups.lower
    if cfg.policy == "all_pairs":
        by_group = np.argsort(g.of, kind="stable")
        size = g.size[g.of[by_group]]
        start = np.repeat(np.cumsum(g.size) - g.size, g.size)  # the sorted position of each row's group start
        h = np.repeat(by_group, size)
        offset = np.arange(len(h)) - np.repeat(np.cumsum(size) - size, size)
        l = by_group[np.repeat(start, size) + offset]
        keep = (g.score[h] > g.score[l]) & ~g.same_text(h, l)
        h, l = h[keep], l[keep]
    elif cfg.policy == "best_vs_random":
        con = duck.connect()
        try:
            con.register("lower", pa.table({"grp": g.of[lower], "row": lower, "norm": g.norm.take(lower),
                                            "best": g.norm.take(g.best[g.of[lower]])}))
            l = con.sql(DRAW_SQL, params={"seed": str(cfg.seed)}).to_arrow_table().column(0).to_numpy()
        finally:
            con.close()
        h = g.best[g.of[l]]
    else:  # best_vs_worst: the lowest score, the last listed on ties
        l = g.first_per_group(lower, -g.k[lower], g.score[lower])
        h = g.best[g.of[l]]
    order = np.lexsort((l, h))
    return h[order], l[order]


def _pairs(rated: pa.Table, g: _Groups, h: np.ndarray, l: np.ndarray, policy: str, score_field: str) -> pa.Table:
    """The raw pairs of chosen rows h and rejected rows l, with their evidence as JSON."""
    n = len(h)
    fmt = rated["format"].take(h).combine_chunks()
    field = pc.if_else(pc.equal(fmt, "ultrafeedback"), score_field, "score")
    models = {side: rated["model"].take(rows).combine_chunks() for side, rows in (("chosen", h), ("rejected", l))}
    join = pc.binary_join_element_wise

    def side(name: str, rows: np.ndarray) -> pa.Array:
        return join('{"candidate":', _text(g.k[rows]), ',"model":', _json(models[name]),
                    ',"score":', _number(g.score[rows]), "}", "")

    evidence = join(f'{{"policy":{json.dumps(policy)},"format":', _json(fmt), ',"score_field":', _json(field),
                    ',"candidates":', _text(g.size[g.of[h]]), ',"chosen":', side("chosen", h),
                    ',"rejected":', side("rejected", l), "}", "")
    ids = rated["record_id"].combine_chunks()
    both = np.empty(2 * n, np.int64)
    both[0::2], both[1::2] = h, l
    margin = g.score[h] - g.score[l]
    origin = {s: join("generator:", pc.fill_null(m, "unknown"), "") for s, m in models.items()}
    return pa.table({
        "prompt": rated["prompt"].take(h), "chosen": rated["response"].take(h), "rejected": rated["response"].take(l),
        "score_chosen": g.score[h], "score_rejected": g.score[l], "margin": margin,
        "source": pa.repeat("rated", n), "signal": pa.repeat("ratings", n), "annotator": join("ratings:", field, ""),
        "weight": np.ones(n), "input_ids": pa.ListArray.from_arrays(np.arange(0, 2 * n + 1, 2, dtype=np.int32),
                                                                     ids.take(both)),
        "signal_value": margin, "evidence": evidence, "recipe": pa.repeat("implicit", n),
        "chosen_origin": origin["chosen"], "rejected_origin": origin["rejected"],
        "generator": pa.nulls(n, pa.string())})


def _json(values: pa.Array) -> pa.Array:
    """Each value as JSON text (null as null); a column of few distinct values (models, formats)."""
    return pa.array(per_value(values, lambda v: json.dumps(v, ensure_ascii=False)), pa.string())


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _number(values: np.ndarray) -> pa.Array:
    """Scores as text, as Python's json and DuckDB print them: 4.0, 3.5 (a few distinct scores)."""
    return pa.array(per_value(pa.array(values), lambda v: "null" if v is None else repr(float(v))), pa.string())


def _unpaired(rated: pa.Table, g: _Groups, paired: np.ndarray, policy: str) -> pa.Table:
    """Why every row that is in no pair made none."""
    rows = np.flatnonzero(~paired)
    grp = g.of[rows]
    best = g.best[grp]
    has_lower = np.bincount(g.of[g.lower], minlength=len(g.best)) > 0
    cases = [g.size[grp] < 2, g.hi[grp] == g.lo[grp], ~has_lower[grp],
             (rows != best) & g.same_text(rows, best), np.full(len(rows), policy == "all_pairs")]
    hi, n = _number(g.hi[grp]), _text(g.size[grp])
    join = pc.binary_join_element_wise
    values = [
        "the only usable candidate of its prompt (the others, if any, are quarantined)",
        join("all ", n, " candidates tie at score ", hi, ""),
        "every lower-scored candidate repeats the best one's text",
        join("repeats the text of the best candidate (#", _text(g.k[best]), ")", ""),
        "ties every other candidate it differs from, or repeats their text",
        join(f"not picked by {policy} (score ", _number(g.score[rows]), ", best ", hi, ")", "")]
    reason = pc.case_when(pc.make_struct(*map(pa.array, cases), field_names=[str(i) for i in range(5)]),
                          *[v if isinstance(v, pa.Array) else pa.scalar(v) for v in values])
    return pa.table({"record_id": rated["record_id"].take(rows), "reason": join("ratings: ", reason, "")})


def mine_ratings(rated: pa.Table, cfg: RatingsSignalConfig, score_field: str = "fine-grained_score") -> SignalResult:
    """Pairs by `cfg.policy`, and why every other candidate made none."""
    if not rated.num_rows:
        return SignalResult()
    groups = _Groups(rated)
    h, l = _picks(groups, cfg)
    paired = np.zeros(rated.num_rows, bool)
    paired[h] = paired[l] = True
    return SignalResult(pairs=conform("raw_pairs", _pairs(rated, groups, h, l, cfg.policy, score_field)),
                        unpaired=conform("unpaired", _unpaired(rated, groups, paired, cfg.policy)))
