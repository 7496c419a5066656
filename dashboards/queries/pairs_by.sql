-- Kept pairs by source, by signal and by recipe (one row per value of each dimension).
SELECT CASE WHEN grouping(source) = 0 THEN 'source' WHEN grouping(signal) = 0 THEN 'signal' ELSE 'recipe' END
           AS dimension,
       coalesce(source, signal, recipe) AS value,
       count(*) AS pairs, round(avg(margin), 4) AS mean_margin, round(avg(weight), 4) AS mean_weight
FROM pairs
WHERE dataset = getvariable('dataset') AND version = getvariable('version')
GROUP BY GROUPING SETS ((source), (signal), (recipe))
ORDER BY dimension, pairs DESC, value;
