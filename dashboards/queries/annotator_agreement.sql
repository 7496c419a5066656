-- Model annotators (judges, density ratios, reward models, FLR) on the pairs they scored, kept or
-- not: verdicts (a = agrees with the signal's chosen side), unscored pairs, and for dual-order
-- judges the position flips (the verdict changed when the two responses swapped places).
WITH per AS (
    SELECT name, CAST(annotator AS JSON) -> 'annotators' -> name AS x,
           TRY_CAST(json_extract_string(annotator, '$.agreement') AS DOUBLE) AS agreement
    FROM (SELECT annotator, unnest(json_keys(annotator, '$.annotators')) AS name FROM lineage
          WHERE dataset = getvariable('dataset') AND version = getvariable('version') AND annotator IS NOT NULL)),
v AS (SELECT name, json_extract_string(x, '$.type') AS type, json_extract_string(x, '$.verdict') AS verdict,
             json_extract_string(x, '$.p_a') AS p_a, json_extract_string(x, '$.evidence.flip') AS flip, agreement
      FROM per)
SELECT name, any_value(type) AS type, count(*) AS pairs,
       count(*) FILTER (verdict = 'a') AS agrees,
       count(*) FILTER (verdict = 'b') AS disagrees,
       count(*) FILTER (verdict = 'tie') AS ties,
       count(*) FILTER (p_a IS NULL) AS unscored,
       count(*) FILTER (flip IS NOT NULL) AS both_orders,
       count(*) FILTER (flip = 'true') AS flips,
       round(count(*) FILTER (flip = 'true') / nullif(count(*) FILTER (flip IS NOT NULL), 0), 4) AS flip_rate,
       round(avg(agreement), 4) AS mean_agreement
FROM v GROUP BY name
ORDER BY name;
