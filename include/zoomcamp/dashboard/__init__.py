"""The walkthrough 4_2 monitoring dashboard: summary queries (`summary`), server-side SVG (`render`)
and the FastAPI app the Airflow plugin in plugins/zoomcamp_dashboard.py mounts (`app`)."""
