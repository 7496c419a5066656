-- The ledger as a funnel: inputs -> quarantined -> filtered by each stage -> kept.
-- A filtered record's reason starts with the stage that stopped it ("ugc: ...", "per_prompt_cap: ...");
-- signal stages come first, then the pair filters in the order the pipeline applies them
-- (their position in the lineage decision log). `remaining` is what is left after the stage.
WITH ledger_v AS (
    SELECT status, split_part(reason, ':', 1) AS stage
    FROM ledger WHERE dataset = getvariable('dataset') AND version = getvariable('version')),
filter_order AS (
    SELECT d.filter AS stage, min(d.pos) AS pos
    FROM (SELECT unnest(list_transform(decisions, lambda x, i: {'filter': x.filter, 'pos': i})) AS d
          FROM lineage WHERE dataset = getvariable('dataset') AND version = getvariable('version'))
    GROUP BY ALL),
steps AS (
    SELECT 0 AS rank, 'quarantined' AS stage, 'quarantine' AS kind, count(*) FILTER (status = 'quarantined') AS removed
    FROM ledger_v
    UNION ALL
    SELECT CASE WHEN f.pos IS NULL THEN 1 ELSE 100 + f.pos END, l.stage,
           CASE WHEN f.pos IS NULL THEN 'signal' ELSE 'filter' END, count(*)
    FROM ledger_v l LEFT JOIN filter_order f USING (stage)
    WHERE l.status = 'filtered' GROUP BY ALL)
SELECT stage, kind, removed,
       CAST((SELECT count(*) FROM ledger_v) - sum(removed) OVER (ORDER BY rank, removed DESC, stage) AS BIGINT) AS remaining
FROM steps
ORDER BY rank, removed DESC, stage;
