"""`ratings`: pairs from rated candidates (UltraFeedback and the generic prompt + candidates form),
one DuckDB query over the whole `rated` table, so no Python runs per prompt.

The candidates of one record compete. Texts are compared after whitespace normalization, and the
tie rule holds inside the policy: a pair needs a strictly higher score on the chosen side and a
different text, so equal scores or identical texts never make a pair. Policies:

* `best_vs_worst`: the best candidate (highest score, first on ties) vs the lowest-scored one
  whose text differs from the best's;
* `best_vs_random`: the best vs a seeded random draw among the lower-scored candidates with a
  different text (the Tulu 3 recipe); the draw hashes the seed and the two responses, so it does
  not depend on the file's name or order;
* `all_pairs`: every (higher, lower) pair with different texts; `filters.min_margin.ratings`
  then keeps those above a margin.

Every candidate that ends in no pair gets the reason in the ledger."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline import duck
from pipeline.config import RatingsSignalConfig
from pipeline.hashing import normalize_ws
from pipeline.schema import conform
from pipeline.signals.result import SignalResult

# `c` holds the keys of the rated table only (its row, scores, models and a 128-bit hash of each
# response whitespace-normalized as the tie rule does): DuckDB picks the pairs on these, and the
# texts are then taken by row with Arrow, so no text goes through a join.
KEYS_SQL = """
CREATE OR REPLACE TEMP TABLE g AS
SELECT prompt_key, count(*) AS n, max(score) AS hi, min(score) AS lo,
       arg_max(candidate, (score, -candidate)) AS best
FROM c GROUP BY prompt_key;
CREATE OR REPLACE TEMP TABLE b AS
SELECT c.prompt_key, c.candidate, c.text_hash FROM c JOIN g ON c.prompt_key = g.prompt_key AND c.candidate = g.best;
CREATE OR REPLACE TEMP TABLE lower AS   -- candidates a pair with the best may reject
SELECT c.prompt_key, c.candidate, c.score, c.text_hash, b.candidate AS best_candidate, b.text_hash AS best_hash
FROM c JOIN b USING (prompt_key) JOIN g USING (prompt_key)
WHERE c.score < g.hi AND c.text_hash <> b.text_hash;
"""

REJECTED = {
    "best_vs_worst": "arg_min(candidate, (score, -candidate))",
    "best_vs_random": "arg_min(candidate, md5_number(concat($seed, ':', best_hash, ':', text_hash)))",
}

PAIRS = """
SELECT h.row AS chosen_row, l.row AS rejected_row,
       h.score AS score_chosen, l.score AS score_rejected, h.score - l.score AS margin,
       'rated' AS source, 'ratings' AS signal, 'ratings:' || f.field AS annotator, 1.0 AS weight,
       [h.record_id, l.record_id] AS input_ids, h.score - l.score AS signal_value,
       to_json({'policy': $policy, 'format': h.format, 'score_field': f.field, 'candidates': g.n,
                'chosen': {'candidate': h.candidate, 'model': h.model, 'score': h.score},
                'rejected': {'candidate': l.candidate, 'model': l.model, 'score': l.score}})::VARCHAR AS evidence,
       'implicit' AS recipe,
       'generator:' || coalesce(h.model, 'unknown') AS chosen_origin,
       'generator:' || coalesce(l.model, 'unknown') AS rejected_origin,
       NULL::VARCHAR AS generator
FROM picks p JOIN g USING (prompt_key)
JOIN c AS h ON h.prompt_key = p.prompt_key AND h.candidate = p.chosen
JOIN c AS l ON l.prompt_key = p.prompt_key AND l.candidate = p.rejected,
LATERAL (SELECT CASE h.format WHEN 'ultrafeedback' THEN $score_field ELSE 'score' END AS field) f
ORDER BY h.row, l.row  -- file order: a pair found twice lists its first record first
"""

UNPAIRED = """
SELECT c.record_id,
       'ratings: ' || CASE
           WHEN g.n < 2 THEN 'the only usable candidate of its prompt (the others, if any, are quarantined)'
           WHEN g.hi = g.lo THEN 'all ' || g.n || ' candidates tie at score ' || g.hi
           WHEN NOT EXISTS (SELECT 1 FROM lower x WHERE x.prompt_key = c.prompt_key)
               THEN 'every lower-scored candidate repeats the best one''s text'
           WHEN c.candidate <> b.candidate AND c.text_hash = b.text_hash
               THEN 'repeats the text of the best candidate (#' || b.candidate || ')'
           WHEN $policy = 'all_pairs' THEN 'ties every other candidate it differs from, or repeats their text'
           ELSE 'not picked by ' || $policy || ' (score ' || c.score || ', best ' || g.hi || ')' END AS reason
FROM c JOIN g USING (prompt_key) JOIN b USING (prompt_key)
WHERE c.row NOT IN (SELECT chosen_row FROM pairs UNION ALL SELECT rejected_row FROM pairs)
ORDER BY c.row
"""


def _picks_sql(policy: str) -> str:
    if policy == "all_pairs":
        return """CREATE OR REPLACE TEMP TABLE picks AS
                  SELECT h.prompt_key, h.candidate AS chosen, l.candidate AS rejected
                  FROM c AS h JOIN c AS l ON h.prompt_key = l.prompt_key AND h.score > l.score
                  AND h.text_hash <> l.text_hash"""
    return f"""CREATE OR REPLACE TEMP TABLE picks AS
               SELECT prompt_key, any_value(best_candidate) AS chosen, {REJECTED[policy]} AS rejected
               FROM lower GROUP BY prompt_key"""


def mine_ratings(rated: pa.Table, cfg: RatingsSignalConfig, score_field: str = "fine-grained_score") -> SignalResult:
    """Pairs by `cfg.policy`, and why every other candidate made none."""
    con = duck.connect()
    try:
        con.register("t", pa.table({"norm": normalize_ws(rated["response"])}))
        hashes = con.sql("SELECT md5_number(norm) AS h FROM t").to_arrow_table().column(0)
        keys = rated.select(["record_id", "prompt_key", "candidate", "score", "model", "format"])
        con.register("c", keys.append_column("row", pa.array(np.arange(rated.num_rows))).append_column("text_hash", hashes))
        con.execute(KEYS_SQL)
        con.execute(_picks_sql(cfg.policy), {"seed": str(cfg.seed)} if cfg.policy == "best_vs_random" else {})
        picked = con.sql(PAIRS, params={"policy": cfg.policy, "score_field": score_field}).to_arrow_table()
        con.register("pairs", picked)
        unpaired = con.sql(UNPAIRED, params={"policy": cfg.policy}).to_arrow_table()
    finally:
        con.close()
    chosen, rejected = picked["chosen_row"], picked["rejected_row"]
    pairs = picked.drop_columns(["chosen_row", "rejected_row"])
    pairs = pairs.add_column(0, "rejected", rated["response"].take(rejected)).add_column(
        0, "chosen", rated["response"].take(chosen)).add_column(0, "prompt", rated["prompt"].take(chosen))
    return SignalResult(pairs=conform("raw_pairs", pairs), unpaired=conform("unpaired", unpaired))
