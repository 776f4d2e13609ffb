"""``python -m benchmarks.runtime``: the runtime as shipped against plain ARQ and SAQ."""
