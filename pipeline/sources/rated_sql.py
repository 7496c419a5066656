"""The SQL of the rated-candidates reader (pipeline/sources/rated.py): DuckDB parses each line once
with json_transform into a shape that fits both record forms, then checks typed fragments."""
import json

SCORE_FIELDS = ("fine-grained_score", "overall_score")   # UltraFeedback's; the generic form's is `score`
SHAPE = json.dumps({"instruction": "JSON", "prompt": "JSON",
                    "completions": [{"model": "JSON", "response": "JSON", **{f: "JSON" for f in SCORE_FIELDS}}],
                    "candidates": [{"model": "JSON", "response": "JSON", "score": "JSON"}]})
MESSAGES_SHAPE = '[{"role": "VARCHAR", "content": "VARCHAR"}]'

# One JSON parse per line (json_transform); every check after it reads small typed fragments.
# Rows that fail any check get error = true and are explained by Python (rare, and precise there).
RECORDS_SQL = """
WITH t AS (SELECT line, raw, TRY(decode(raw)) AS text FROM lines),
j AS (SELECT line, raw, text, TRY(json_transform(text, $shape)) AS j FROM t
      WHERE octet_length(raw) > 2),  -- blank lines are no records (longer all-blank ones: see rated._block)
r AS (SELECT line, raw,
             CASE WHEN j.completions IS NOT NULL AND j.instruction IS NOT NULL THEN 'ultrafeedback'
                  WHEN j.candidates IS NOT NULL AND j.prompt IS NOT NULL THEN 'candidates' END AS fmt,
             coalesce(j.instruction, j.prompt) AS prompt_json,
             CASE WHEN j.completions IS NOT NULL AND j.instruction IS NOT NULL
                  THEN list_transform(j.completions, lambda c: {'model': c.model, 'response': c.response,
                                                                'score': c."{score_field}"})
                  ELSE j.candidates END AS cands
      FROM j),
p AS (SELECT *,
             CASE json_type(prompt_json)
                  WHEN 'VARCHAR' THEN [{'role': 'user', 'content': prompt_json ->> '$'}]
                  WHEN 'ARRAY' THEN TRY(from_json(prompt_json, $messages_shape)) END AS prompt
      FROM r)
SELECT line, raw, fmt, prompt, cands,
       (fmt IS NULL OR prompt IS NULL OR len(cands) = 0
       OR list_bool_or(list_transform(prompt, lambda m: m.content IS NULL OR m.role IS NULL
                                      OR m.role NOT IN ('system', 'user', 'assistant')
                                      OR length(m.content) > $max_chars))
       OR prompt[-1].role <> 'user' OR trim(prompt[-1].content) = ''
       OR octet_length(raw) > $max_bytes) IS NOT FALSE AS error
FROM p
"""

CANDIDATES_SQL = """
SELECT line, k, fmt, prompt, response, score, model,
       (rtype IS DISTINCT FROM 'VARCHAR' OR trim(response) = '' OR length(response) > $max_chars
        OR stype NOT IN ('DOUBLE', 'BIGINT', 'UBIGINT') OR NOT isfinite(score)
        OR (mtype IS NOT NULL AND mtype NOT IN ('VARCHAR', 'NULL'))) IS NOT FALSE AS error
FROM (SELECT line, k, fmt, prompt, json_type(c.response) AS rtype, c.response ->> '$' AS response,
             json_type(c.score) AS stype, TRY_CAST(c.score AS DOUBLE) AS score,
             json_type(c.model) AS mtype, c.model ->> '$' AS model
      FROM (SELECT line, fmt, prompt, unnest(cands) AS c, generate_subscripts(cands, 1) AS k
            FROM records WHERE NOT error))
"""

# One pass per block: the records are parsed once (a materialized CTE) and the query returns the
# records it turned down (k = 0, with their raw line) and every candidate of the others.
BLOCK_SQL = """
WITH records AS MATERIALIZED ({records})
SELECT line, 0 AS k, raw, NULL AS fmt, NULL AS prompt, NULL AS response, NULL::DOUBLE AS score, NULL AS model,
       true AS error FROM records WHERE error
UNION ALL
SELECT line, k, NULL AS raw, fmt, prompt, response, score, model, error FROM ({candidates})
"""
