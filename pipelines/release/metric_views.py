"""The metrics as SQL views in the published DuckDB file (schema ``metrics``), for BI tools.

A BI tool reading the published file cannot call MetricFlow, so the publish also writes one view
per entry of :data:`VIEWS`. Each view is generated from the semantic layer itself: dbt writes
``semantic_manifest.json`` (semantic models, measures with their rendered ``expr``, metrics) next
to ``manifest.json`` in the pipeline's dbt target folder, and :func:`view_sql` turns the metrics
named by a view into one ``select ... group by`` over the published mart the semantic model
reads. A metric is never re-derived by hand here: change a measure or a metric in
``dbt_project/models/metrics/_metrics__models.yml`` and the views follow on the next publish.

What the generator supports is what the semantic layer of this project uses (it refuses the
rest, so a new kind of metric fails the publish loudly rather than publishing a wrong view):

- ``simple`` metrics: the measure's aggregation (sum, max, min, count, count_distinct,
  average) over its ``expr``, without filters;
- ``ratio`` metrics over two simple metrics of the same semantic model:
  ``numerator / nullif(denominator, 0)`` computed in double precision, as MetricFlow does;
- one semantic model per view, grouped by dimensions at the grain of the data. A measure that is
  non-additive over a time dimension (a daily count) needs that dimension in the view's
  group-by (then each group holds one day and MetricFlow's "last day of the period" rule does
  not apply).

The tests compare every view with MetricFlow's answer and with the mart's own columns
(``tests/e2e/test_metrics.py``); docs/metrics.md documents the views.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import DataProblem

METRICS_SCHEMA = "metrics"
SEMANTIC_MANIFEST = "semantic_manifest.json"

#: MetricFlow aggregation -> SQL aggregate
_AGGREGATES = {
    "sum": "sum({})",
    "max": "max({})",
    "min": "min({})",
    "count": "count({})",
    "count_distinct": "count(distinct {})",
    "average": "avg({})",
}


@dataclass(frozen=True)
class MetricView:
    """One published view: ``metrics.<name>``, the metrics of one semantic model by ``group_by``."""

    name: str
    semantic_model: str
    group_by: tuple[str, ...]
    #: ``(column, metric)``: the view's column name and the semantic-layer metric it holds
    columns: tuple[tuple[str, str], ...]
    description: str
    #: an optional filter on the mart's columns (SQL), e.g. one segment dimension
    where: str | None = None
    #: the view's sort order (SQL over its own columns)
    order_by: str | None = None


def _retention_columns(period: str) -> tuple[tuple[str, str], ...]:
    ratios = ("grr", "nrr", "logo_retention", "expansion_rate", "quick_ratio")
    flows = ("starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
             "ending_mrr", "starting_logos", "churned_logos", "new_logos", "ending_logos")
    return (tuple((r, f"{r}_{period}") for r in ratios)
            + tuple((f, f"{period}_{f}") for f in flows))


_RETENTION_DIMENSIONS = ("period_start_date", "is_period_complete", "is_backcast", "segment_dimension",
                         "segment_sort_key", "segment_value")
_TIER_DIMENSIONS = ("as_of_date", "tier_number", "tier_name")
_HEALTH_TIER_DIMENSIONS = ("as_of_date", "tier_number", "assigned_tier")

VIEWS: tuple[MetricView, ...] = (
    MetricView(
        "segment_retention_by_month", "segment_retention_monthly", _RETENTION_DIMENSIONS,
        _retention_columns("monthly"),
        "GRR, NRR, logo retention, expansion rate and quick ratio per month and segment (each account "
        "in its segment at the start of the month), with the flows they are computed from. Headline "
        "figures: is_period_complete. Metrics grr_monthly ... of the dbt semantic layer (docs/metrics.md).",
        order_by="period_start_date, segment_dimension, segment_sort_key, segment_value"),
    MetricView(
        "segment_retention_by_quarter", "segment_retention_quarterly", _RETENTION_DIMENSIONS,
        _retention_columns("quarterly"),
        "GRR, NRR, logo retention, expansion rate and quick ratio per quarter and segment (each account "
        "in its segment at the start of the quarter; quarterly flows compare the quarter's end with the "
        "previous quarter's end). Headline figures: is_period_complete. Metrics grr_quarterly ... "
        "(docs/metrics.md).",
        order_by="period_start_date, segment_dimension, segment_sort_key, segment_value"),
    MetricView(
        "retention_by_tier_quarter", "segment_retention_quarterly",
        ("period_start_date", "is_period_complete", "is_backcast", "segment_sort_key", "segment_value"),
        _retention_columns("quarterly")[:5],
        "Retention ratios per quarter and tier (segment_value is the tier, segment_sort_key its "
        "number): NRR by tier last quarter is the row of the latest complete quarter per tier.",
        where="segment_dimension = 'tier'", order_by="period_start_date, segment_sort_key"),
    MetricView(
        "tier_mix_daily", "tier_distribution", _TIER_DIMENSIONS,
        (("accounts", "tier_accounts"), ("arr", "tier_arr"),
         ("account_share", "tier_account_share"), ("arr_share", "tier_arr_share"),
         ("account_share_target_min", "tier_account_share_target_min"),
         ("account_share_target_max", "tier_account_share_target_max"),
         ("arr_share_target_min", "tier_arr_share_target_min"),
         ("arr_share_target_max", "tier_arr_share_target_max")),
        "Live accounts and ARR per tier and as-of date, their shares of all tiered accounts and ARR, and "
        "the tier's target bands (docs/metrics.md).",
        order_by="as_of_date, tier_number"),
    MetricView(
        "health_by_tier_daily", "account_health_daily", _HEALTH_TIER_DIMENSIONS,
        (("accounts", "health_scored_accounts"), ("average_health_score", "average_health_score")),
        "Live accounts and their average health score per tier and as-of date.",
        where="account_status = 'live'", order_by="as_of_date, tier_number"),
    MetricView(
        "health_bands_by_tier_daily", "account_health_daily", (*_HEALTH_TIER_DIMENSIONS, "health_status"),
        (("accounts", "health_scored_accounts"),),
        "Live accounts per tier, health band (health_status; null: no health component) and as-of date.",
        where="account_status = 'live'", order_by="as_of_date, tier_number, health_status"),
)


class MetricViewError(DataProblem, RuntimeError):
    """The semantic manifest lacks something a view needs, or uses what the generator refuses."""


def load_semantic_manifest(path: Path) -> dict[str, Any]:
    """dbt's ``semantic_manifest.json`` (written by every dbt parse, build or run)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise MetricViewError(f"no dbt semantic manifest at {path}: run dbt (segment-mart build) first") from exc


class _SemanticLayer:
    def __init__(self, manifest: dict[str, Any]) -> None:
        self.models = {m["name"]: m for m in manifest.get("semantic_models", [])}
        self.metrics = {m["name"]: m for m in manifest.get("metrics", [])}
        self.measures: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for model in self.models.values():
            for measure in model.get("measures", []):
                self.measures[measure["name"]] = (model, measure)

    def model(self, name: str) -> dict[str, Any]:
        try:
            return self.models[name]
        except KeyError:
            raise MetricViewError(f"semantic model {name!r} is not in the semantic manifest") from None

    def dimension_expr(self, model: dict[str, Any], name: str) -> str:
        for dim in model.get("dimensions", []):
            if dim["name"] == name:
                return dim.get("expr") or name
        raise MetricViewError(f"semantic model {model['name']!r} has no dimension {name!r}")

    def measure_sql(self, view: MetricView, name: str) -> str:
        try:
            model, measure = self.measures[name]
        except KeyError:
            raise MetricViewError(f"measure {name!r} is not in the semantic manifest") from None
        if model["name"] != view.semantic_model:
            raise MetricViewError(f"view metrics.{view.name}: measure {name!r} belongs to semantic model "
                                  f"{model['name']!r}, not {view.semantic_model!r}")
        agg = measure["agg"]
        if agg not in _AGGREGATES:
            raise MetricViewError(f"measure {name!r}: aggregation {agg!r} is not supported in a published view")
        non_additive = measure.get("non_additive_dimension")
        if non_additive and non_additive["name"] not in view.group_by:
            raise MetricViewError(f"view metrics.{view.name}: measure {name!r} is non-additive over "
                                  f"{non_additive['name']!r}, which the view must group by")
        expr = " ".join((measure.get("expr") or name).split())
        return _AGGREGATES[agg].format(f"({expr})")

    def metric_sql(self, view: MetricView, name: str) -> tuple[str, str]:
        """``(sql, kind)`` of a metric at the view's grain; kind is the metric type."""
        try:
            metric = self.metrics[name]
        except KeyError:
            raise MetricViewError(f"metric {name!r} is not in the semantic manifest") from None
        if metric.get("filter"):
            raise MetricViewError(f"metric {name!r} has a filter: not supported in a published view")
        params = metric["type_params"]
        if metric["type"] == "simple":
            measure = params["measure"]
            if measure.get("filter") or measure.get("fill_nulls_with") is not None or measure.get("join_to_timespine"):
                raise MetricViewError(f"metric {name!r}: measure options are not supported in a published view")
            return self.measure_sql(view, measure["name"]), "simple"
        if metric["type"] == "ratio":
            parts = []
            for side in ("numerator", "denominator"):
                ref = params[side]
                if ref.get("filter") or ref.get("offset_window") or ref.get("offset_to_grain"):
                    raise MetricViewError(f"metric {name!r}: {side} options are not supported in a published view")
                sql, kind = self.metric_sql(view, ref["name"])
                if kind != "simple":
                    raise MetricViewError(f"metric {name!r}: the {side} must be a simple metric")
                parts.append(sql)
            numerator, denominator = parts
            return f"cast({numerator} as double) / cast(nullif({denominator}, 0) as double)", "ratio"
        raise MetricViewError(f"metric {name!r} is a {metric['type']} metric: not supported in a published view")


def _column_type(metric: str, kind: str, agg_sql: str) -> str:
    """The published type of a view column: ratios and averages are DECIMAL(18,6) shares or
    scores, money DECIMAL(18,2), counts BIGINT (docs/quality-and-publish.md: numeric types)."""
    if kind == "ratio" or agg_sql.startswith("avg(") or "share" in metric:
        return "decimal(18, 6)"
    if agg_sql.startswith("count(") or metric.endswith(("_logos", "_accounts")):
        return "bigint"
    if metric.endswith(("_mrr", "_arr")):
        return "decimal(18, 2)"
    raise MetricViewError(f"metric {metric!r}: no published column type for it in pipelines/release/metric_views.py")


def view_sql(manifest: dict[str, Any], view: MetricView, marts_schema: str = "marts") -> str:
    """The ``select`` of ``metrics.<view.name>``, over ``<marts_schema>.<mart>``."""
    layer = _SemanticLayer(manifest)
    model = layer.model(view.semantic_model)
    mart = model["node_relation"]["alias"]
    select = [f"    {layer.dimension_expr(model, d)} as {d}" for d in view.group_by]
    for column, metric in view.columns:
        sql, kind = layer.metric_sql(view, metric)
        select.append(f"    cast({sql} as {_column_type(metric, kind, sql)}) as {column}")
    group_by = ", ".join(str(i) for i in range(1, len(view.group_by) + 1))
    lines = ["select", ",\n".join(select), f"from {marts_schema}.{mart}"]
    if view.where:
        lines.append(f"where {view.where}")
    lines.append(f"group by {group_by}")
    if view.order_by:
        lines.append(f"order by {view.order_by}")
    return "\n".join(lines)


def view_comment(manifest: dict[str, Any], view: MetricView) -> dict[str, str]:
    """``{column: comment}`` for a view: the dimensions' and metrics' descriptions."""
    layer = _SemanticLayer(manifest)
    model = layer.model(view.semantic_model)
    dims = {d["name"]: d.get("description") or "" for d in model.get("dimensions", [])}
    out = {d: dims.get(d, "") for d in view.group_by}
    for column, metric in view.columns:
        m = layer.metrics[metric]
        out[column] = f"{m.get('label') or metric}: {' '.join((m.get('description') or '').split())}".strip()
    return out
