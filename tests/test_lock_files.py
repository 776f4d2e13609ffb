"""The image's lock files stay in step with pyproject.toml's dependencies (offline, fast)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "assistant-jobs (pyproject.toml)"
LOCKS = {"requirements.lock": (), "requirements-web.lock": ("web",)}


@dataclass
class Pin:
    """One package of a lock file: its version, hashes, and what asked for it."""

    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> dict[str, Pin]:
    """Parse a ``uv pip compile --generate-hashes`` file."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line):
            current = pins.setdefault(canonicalize_name(match.group(1)), Pin(match.group(2)))
        elif current and (hashed := re.search(r"--hash=(sha256:[0-9a-f]{64})", line)):
            current.hashes.append(hashed.group(1))
        elif current and (via := re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line)):
            current.via += [] if via.group(1) == "via" else [via.group(1).strip()]
    return pins


def direct_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject.toml's dependencies, plus those of ``extras``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_lock_pins_exactly_the_project_s_dependencies_within_their_ranges(
    lock: str, extras: tuple[str, ...]
) -> None:
    """Each direct dependency is pinned inside its range; nothing else claims the project."""
    pins = read_lock(ROOT / lock)
    requirements = direct_requirements(extras)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (
            f"{lock} pins {name}=={pins[name].version}, outside {requirement}: run `make lock`"
        )
    claimed = {name for name, pin in pins.items() if PROJECT in pin.via}
    expected = {canonicalize_name(r.name) for r in requirements}
    assert claimed == expected, f"{lock} is out of date: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_hashed_and_asked_for(lock: str) -> None:
    """Every pinned package has hashes and is required by the project or another pin."""
    pins = read_lock(ROOT / lock)
    assert pins
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no hash in {lock}"
        for parent in pin.via:
            assert parent == PROJECT or canonicalize_name(parent) in pins, (name, parent)


def test_web_lock_agrees_with_the_worker_lock() -> None:
    """The web image runs the same versions as the worker image, plus the web extra's."""
    worker, web = read_lock(ROOT / "requirements.lock"), read_lock(ROOT / "requirements-web.lock")
    assert set(worker) <= set(web)
    assert {name: pin.version for name, pin in worker.items()} == {
        name: web[name].version for name in worker
    }
