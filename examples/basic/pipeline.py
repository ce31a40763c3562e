#!/usr/bin/env pivot
"""A small pipeline: clean numbers, then (in parallel) summarise them and bin them, then report.

Run it with `pivot run examples/basic/pipeline.py`, or directly: `./pipeline.py`, `./pipeline.py status`.
"""
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams

import textstats


class SummaryParams(StageParams):
    precision: int = 3


class HistogramParams(StageParams):
    bins: int = 4


class SummaryOutputs(TypedDict):
    summary: Annotated[dict, outputs.Out("data/summary.json", loaders.JSON())]
    metrics: Annotated[dict, outputs.Metric("metrics/summary.json")]


def clean(
    raw: Annotated[str, outputs.Dep("data/numbers.txt", loaders.Text())],
) -> Annotated[list, outputs.Out("data/clean.json", loaders.JSON())]:
    return textstats.parse_numbers(raw)


def summarise(
    params: SummaryParams,
    values: Annotated[list, outputs.Dep("data/clean.json", loaders.JSON())],
) -> SummaryOutputs:
    summary = textstats.describe(values, params.precision)
    return SummaryOutputs(summary=summary, metrics={"n": len(values), "mean": summary["mean"]})


def histogram(
    params: HistogramParams,
    values: Annotated[list, outputs.Dep("data/clean.json", loaders.JSON())],
) -> Annotated[str, outputs.Out("data/histogram.txt", loaders.Text())]:
    return textstats.histogram(values, params.bins)


def report(
    summary: Annotated[dict, outputs.Dep("data/summary.json", loaders.JSON())],
    hist: Annotated[str, outputs.Dep("data/histogram.txt", loaders.Text())],
    title: Annotated[str, outputs.Dep("data/title.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("report.md", loaders.Text())]:
    lines = [f"# {title.strip()}", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    return "\n".join(lines + ["", "```", hist.rstrip(), "```", ""])


pipeline = Pipeline("basic")
pipeline.register(clean)
pipeline.register(summarise)
pipeline.register(histogram)
pipeline.register(report)
