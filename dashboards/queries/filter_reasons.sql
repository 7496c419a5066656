-- The most frequent reasons records were filtered (numbers folded to '#', so one rule is one row).
SELECT split_part(reason, ':', 1) AS stage,
       regexp_replace(reason, '\b[0-9]+(\.[0-9]+)?\b', '#', 'g') AS reason, count(*) AS records
FROM ledger
WHERE dataset = getvariable('dataset') AND version = getvariable('version') AND status = 'filtered'
GROUP BY ALL
ORDER BY records DESC, reason
LIMIT 15;
