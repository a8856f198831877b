"""Nearest-rank percentiles of measured reruns, and their one-line summary."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured move)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "no moves"
    ms = [s * 1000 for s in seconds]
    return f"n {len(ms):4d}  p50 {percentile(ms, 50):6.0f}  p95 {percentile(ms, 95):6.0f}  p99 {percentile(ms, 99):6.0f}  max {max(ms):6.0f} ms"
