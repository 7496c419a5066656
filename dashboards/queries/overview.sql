-- The version's headline numbers and the curate run's warnings, from its manifest.
-- Every file here runs as is in the DuckDB CLI against WORKSPACE/catalog.duckdb, e.g.
--   SET VARIABLE dataset = 'demo'; SET VARIABLE version = 1;
--   .read dashboards/queries/overview.sql
SELECT dataset, version, parent, created, flow_run_id, config_hash, code_version,
       inputs, kept, filtered, quarantined, pairs,
       CAST(json_extract(manifest_json, '$.stats.mixing.warnings') AS VARCHAR[]) AS warnings
FROM versions
WHERE dataset = getvariable('dataset') AND version = getvariable('version');
