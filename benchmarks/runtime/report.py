"""The benchmark's table: medians per system, ratios against SAQ and plain ARQ, the targets."""

from __future__ import annotations

import argparse
import statistics

__all__ = ["print_report"]

SLOT_LIMIT = 10 / 0.025

#: (metric, label, format, higher is better)
ROWS = [
    ("noop", "no-op jobs drained (/s)", "{:,.0f}", True),
    ("io", "~25 ms jobs drained (/s, slot limit 400)", "{:,.0f}", True),
    ("enqueue", "enqueue, one producer (/s)", "{:,.0f}", True),
    ("pickup_p50", "pick-up p50, idle worker (ms)", "{:.1f}", False),
    ("pickup_p99", "pick-up p99, idle worker (ms)", "{:.1f}", False),
    ("idle_sent", "idle Redis commands/s per worker, sent", "{:.1f}", False),
    ("idle_executed", "  … executed, with those inside scripts", "{:.1f}", False),
    ("job_sent", "Redis commands per job, sent", "{:.1f}", False),
    ("job_executed", "  … executed, with those inside scripts", "{:.1f}", False),
    ("job_round_trips", "Redis round trips per job", "{:.1f}", False),
    ("cpu_ms", "worker CPU per no-op job (ms)", "{:.2f}", False),
    ("two_workers", "2 workers / 1, no-op", "{:.2f}x", True),
]


def _median(results: dict[str, dict[str, list[float]]], metric: str, system: str) -> float | None:
    values = results.get(metric, {}).get(system)
    return statistics.median(values) if values else None


def print_report(
    results: dict[str, dict[str, list[float]]],
    systems: list[str],
    args: argparse.Namespace,
    load: list[float],
    otlp_requests: int,
) -> None:
    """Print the table, then each target with its figure."""
    ratios = [name for name in ("saq", "arq") if name in systems and "runtime" in systems]
    header = ["", *systems, *(f"runtime / {name}" for name in ratios)]
    lines = [header, ["---"] * len(header)]
    for metric, label, fmt, _ in ROWS:
        row = [label]
        for system in systems:
            value = _median(results, metric, system)
            row.append("-" if value is None else fmt.format(value))
        for name in ratios:
            mine, theirs = _median(results, metric, "runtime"), _median(results, metric, name)
            row.append(f"{mine / theirs:.2f}" if mine and theirs else "-")
        lines.append(row)
    print(
        f"\n{args.rounds} interleaved rounds, medians; {args.noop_jobs} no-op / {args.io_jobs} "
        f"~25 ms jobs per drain; 1-min load average {min(load):.1f}-{max(load):.1f}; "
        f"{otlp_requests} OTLP requests received\n"
    )
    for row in lines:
        print("| " + " | ".join(row) + " |")
    _print_targets(results, systems)


def _print_targets(results: dict[str, dict[str, list[float]]], systems: list[str]) -> None:
    def get(metric: str, system: str = "runtime") -> float | None:
        return _median(results, metric, system) if system in systems else None

    checks: list[tuple[str, float | None, float | None, bool]] = [
        ("no-op drain ≥ SAQ's", get("noop"), get("noop", "saq"), True),
        ("~25 ms drain ≥ SAQ's", get("io"), get("io", "saq"), True),
        ("~25 ms drain ≥ 90 % of the slot limit", get("io"), 0.9 * SLOT_LIMIT, True),
        ("pick-up p50 ≤ 2 ms", get("pickup_p50"), 2.0, False),
        ("pick-up p99 ≤ 10 ms", get("pickup_p99"), 10.0, False),
        ("idle commands/s ≤ 5 (executed)", get("idle_executed"), 5.0, False),
        ("enqueue ≥ 0.9x plain ARQ's", get("enqueue"), _scaled(get("enqueue", "arq"), 0.9), True),
        ("2 workers ≥ 1.6x one", get("two_workers"), 1.6, True),
        (
            "commands per job ≤ plain ARQ's (executed)",
            get("job_executed"),
            get("job_executed", "arq"),
            False,
        ),
    ]
    print("\nTargets (the runtime as shipped):")
    for label, mine, bound, higher in checks:
        if mine is None or bound is None:
            print(f"  {label}: not measured")
            continue
        met = mine >= bound if higher else mine <= bound
        print(f"  {label}: {mine:,.2f} vs {bound:,.2f} — {'met' if met else 'MISSED'}")


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor
