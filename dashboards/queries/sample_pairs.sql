-- A repeatable sample of kept pairs, up to three per signal, with their lineage (texts cut at
-- 4,000 characters). The sample is drawn on ids first, so only the sampled pairs' texts are read.
WITH picked AS (
    SELECT pair_id FROM pairs
    WHERE dataset = getvariable('dataset') AND version = getvariable('version')
    QUALIFY row_number() OVER (PARTITION BY signal ORDER BY hash(pair_id), pair_id) <= 3)
SELECT p.pair_id, p.source, p.signal, p.recipe, p.annotator, p.margin, p.weight,
       len(p.prompt) AS prompt_messages,
       left(p.prompt[-1].content, 4000) AS prompt, left(p.chosen[-1].content, 4000) AS chosen,
       left(p.rejected[-1].content, 4000) AS rejected,
       l.input_ids, l.chosen_origin, l.rejected_origin, l.signal_value, l.evidence, l.generator,
       l.annotator AS annotation,
       list_transform(l.decisions, lambda x: x.filter || ': ' || x.reason) AS decisions
FROM pairs p SEMI JOIN picked USING (pair_id) JOIN lineage l USING (dataset, version, pair_id)
WHERE p.dataset = getvariable('dataset') AND p.version = getvariable('version')
ORDER BY p.signal, hash(p.pair_id), p.pair_id;
