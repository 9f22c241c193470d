"""Small PromQL builders the dashboards share, so every rate uses Grafana's $__rate_interval and every latency
panel shows the same quantiles."""

from __future__ import annotations

from activity.devtools.dashboards.model import PromTarget

RATE_WINDOW = "$__rate_interval"  # Grafana picks a window of at least four scrape intervals
QUANTILES = (0.5, 0.99)


def rate(series: str) -> str:
    return f"rate({series}[{RATE_WINDOW}])"


def quantiles(histogram: str, by: tuple[str, ...] = (), selector: str = "") -> tuple[PromTarget, ...]:
    """p50 and p99 of a histogram family, optionally per label in `by`."""
    labels = ", ".join(("le", *by))
    legend = " ".join("{{" + label + "}}" for label in by)
    return tuple(
        PromTarget(
            f"histogram_quantile({q}, sum by ({labels}) ({rate(f'{histogram}_bucket{selector}')}))",
            f"p{round(q * 100)} {legend}".strip(),
        )
        for q in QUANTILES
    )
