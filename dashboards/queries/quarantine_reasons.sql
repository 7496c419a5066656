-- The most frequent quarantine reasons, with one example each.
SELECT error_kind, count(*) AS records,
       first(message ORDER BY source_file, line) AS example_message,
       first(source_file || ':' || line ORDER BY source_file, line) AS example_at
FROM quarantine
WHERE dataset = getvariable('dataset') AND version = getvariable('version')
GROUP BY error_kind
ORDER BY records DESC, error_kind
LIMIT 15;
