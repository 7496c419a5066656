-- Score and margin distributions per annotator, as 24 equal-width bins between each series' min and
-- max (the page stays small at any size). Two kinds of series:
--  * what labelled each kept pair (pairs.annotator; human and implicit labels folded to their kind),
--    per signal since each signal has its own unit: score_chosen, score_rejected, margin;
--  * every model annotator on the pairs it scored (lineage.annotator): p_a (its probability that
--    the chosen side is better) and its margin.
WITH labelled AS (
    UNPIVOT (SELECT signal || ' · ' || CASE WHEN split_part(annotator, ':', 1) IN ('human', 'implicit')
                                            THEN split_part(annotator, ':', 1) ELSE annotator END AS series,
                    score_chosen, score_rejected, margin
             FROM pairs WHERE dataset = getvariable('dataset') AND version = getvariable('version'))
    ON score_chosen, score_rejected, margin INTO NAME metric VALUE value),
judged AS (
    SELECT name AS series, CAST(annotator AS JSON) -> 'annotators' -> name AS x
    FROM (SELECT annotator, unnest(json_keys(annotator, '$.annotators')) AS name FROM lineage
          WHERE dataset = getvariable('dataset') AND version = getvariable('version') AND annotator IS NOT NULL)),
v AS (
    SELECT 'pair label' AS kind, series, metric, value FROM labelled
    UNION ALL SELECT 'model annotator', series, 'p_a', TRY_CAST(json_extract_string(x, '$.p_a') AS DOUBLE) FROM judged
    UNION ALL SELECT 'model annotator', series, 'margin', TRY_CAST(json_extract_string(x, '$.margin') AS DOUBLE) FROM judged),
r AS (SELECT kind, series, metric, min(value) AS lo, max(value) AS hi FROM v WHERE isfinite(value) GROUP BY ALL),
b AS (
    SELECT v.kind, v.series, v.metric, r.lo, r.hi,
           CASE WHEN r.hi = r.lo THEN 0 ELSE least(floor((v.value - r.lo) / (r.hi - r.lo) * 24), 23) END AS bin
    FROM v JOIN r USING (kind, series, metric) WHERE isfinite(v.value))
SELECT kind, series, metric, CAST(bin AS INTEGER) AS bin,
       CASE WHEN hi = lo THEN lo ELSE lo + (bin + 0.5) * (hi - lo) / 24 END AS center,
       CASE WHEN hi = lo THEN greatest(abs(lo), 1) / 24 ELSE (hi - lo) / 24 END AS width,
       count(*) AS pairs
FROM b GROUP BY ALL
ORDER BY kind DESC, series, metric, bin;
