-- Near-duplicate prompt clusters: pairs the prompt_dedup filter dropped, grouped by the prompt
-- they duplicate (its id prefix and, when that prompt's pair was kept, its text).
WITH d AS (
    SELECT pair_id, unnest(decisions) AS d FROM lineage
    WHERE dataset = getvariable('dataset') AND version = getvariable('version')),
dup AS (
    SELECT pair_id, regexp_extract(d.reason, 'near-duplicate of prompt ([0-9a-f]+)', 1) AS representative,
           TRY_CAST(regexp_extract(d.reason, 'cosine ([0-9.]+)', 1) AS DOUBLE) AS cosine
    FROM d WHERE d.filter = 'prompt_dedup' AND NOT d.passed),
clusters AS (
    SELECT representative, count(*) AS duplicate_pairs, min(cosine) AS min_cosine, max(cosine) AS max_cosine
    FROM dup GROUP BY representative)
SELECT c.representative, c.duplicate_pairs, c.min_cosine, c.max_cosine,
       (SELECT left(p.prompt[-1].content, 300) FROM pairs p
        WHERE p.dataset = getvariable('dataset') AND p.version = getvariable('version')
          AND starts_with(p.prompt_id, c.representative) LIMIT 1) AS representative_prompt
FROM clusters c
ORDER BY duplicate_pairs DESC, representative
LIMIT 25;
