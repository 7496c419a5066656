"""Per-version quality dashboards: plain SQL files in dashboards/queries/ run against the DuckDB
catalog, charted with Plotly into one self-contained HTML page (dashboards.build.build_dashboard)."""
