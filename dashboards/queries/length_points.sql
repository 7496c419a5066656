-- Chosen vs rejected length of up to 3,000 kept pairs (a repeatable sample), for the scatter plot.
SELECT signal, pair_id,
       list_sum(list_transform(chosen, lambda m: length(m.content))) AS chosen_chars,
       list_sum(list_transform(rejected, lambda m: length(m.content))) AS rejected_chars
FROM pairs WHERE dataset = getvariable('dataset') AND version = getvariable('version')
ORDER BY hash(pair_id)
LIMIT 3000;
