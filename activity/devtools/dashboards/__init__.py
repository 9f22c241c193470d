"""Grafana dashboards as code: the pipeline, the API server and the audit activity itself.

`python -m activity.devtools.dashboards.build` writes the JSON to dashboards/ and the grafana-operator resources to
config/components/observability/dashboards/; `python -m activity.devtools.dashboards.preview` renders PNG previews.
"""
