"""The compose files as Compose reads them: each file, and each environment's merged stack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"

#: What a user passes with -f, per environment, in order.
ENVIRONMENTS = {
    "dev": ("base.yml", "dev.yml"),
    "stage": ("base.yml", "prod.yml", "stage.yml"),
    "prod": ("base.yml", "prod.yml"),
}

#: Sequences that an override file replaces instead of extending (Compose's merge rules).
_REPLACED_SEQUENCES = {"command", "entrypoint", "test"}

#: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` and the like.
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def load(name: str) -> dict[str, Any]:
    """One compose file, YAML anchors and merge keys resolved."""
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / name).read_text())
    return loaded


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` laid over ``base`` as ``docker compose -f base -f override`` does.

    Mappings merge key by key (services, environment, deploy, depends_on, healthcheck);
    ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced; other sequences (ports,
    volumes) keep the base's entries and add the override's; scalars are replaced.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key in _REPLACED_SEQUENCES:
            return override
        return base + [item for item in override if item not in base]
    return override


def stack(environment: str) -> dict[str, Any]:
    """The merged configuration of one environment."""
    merged: dict[str, Any] = {}
    for name in ENVIRONMENTS[environment]:
        merged = merge(merged, load(name))
    return merged


def variables_used(environment: str) -> set[str]:
    """Every variable an environment's files interpolate."""
    text = "\n".join((COMPOSE / name).read_text() for name in ENVIRONMENTS[environment])
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return {match.group(1) for match in INTERPOLATION.finditer("\n".join(lines))}
