"""Per-version quality dashboards: plain SQL files in dashboards/queries/ run against the DuckDB
catalog, charted with Plotly into one self-contained HTML page."""
from dashboards.build import build_dashboard

__all__ = ["build_dashboard"]
