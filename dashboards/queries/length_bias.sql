-- Length bias per signal: do chosen sides run longer than rejected ones, and does the margin follow
-- the length gap? Lengths are characters summed over each side's messages.
WITH p AS (
    SELECT signal, margin,
           list_sum(list_transform(chosen, lambda m: length(m.content))) AS chosen_chars,
           list_sum(list_transform(rejected, lambda m: length(m.content))) AS rejected_chars
    FROM pairs WHERE dataset = getvariable('dataset') AND version = getvariable('version'))
SELECT signal, count(*) AS pairs,
       round(avg(CAST(chosen_chars > rejected_chars AS DOUBLE)), 4) AS share_chosen_longer,
       median(chosen_chars) AS median_chosen_chars, median(rejected_chars) AS median_rejected_chars,
       round(corr(margin, chosen_chars - rejected_chars), 4) AS corr_margin_length_gap
FROM p GROUP BY signal
ORDER BY pairs DESC, signal;
