"""Job families: the built-in ones, and those a backend declares in its own package.

A family is a name with its own queue (``jobs:queue:<name>``) and its own workers. A backend
adds one in its package, before declaring the family's jobs::

    declare_family("reports")

    @job(family="reports")
    async def build_report(ctx: JobContext, *, user_id: int) -> dict[str, int]: ...

    class WorkerSettings(FamilyWorkerSettings, family="reports"):
        functions = [build_report]

and runs it with ``arq myapp.reports.WorkerSettings``. Producers find the family's jobs by
importing the modules listed in ``JOB_FAMILY_MODULES`` the first time a job name is unknown,
as they import ``jobs.<family>`` for the built-in families.
"""

from __future__ import annotations

import importlib
import re

from jobs.constants import FAMILIES
from jobs.errors import ConfigurationError
from jobs.settings import get_settings

__all__ = ["FAMILY_NAME", "declare_family", "is_family", "known_families", "load_family_modules"]

#: What a family name may look like: it becomes part of queue and Redis key names.
FAMILY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

_declared: dict[str, None] = {}
_loaded_modules: set[str] = set()


def declare_family(name: str) -> str:
    """Declare a family of the backend's own (idempotent); returns ``name``.

    Names are lowercase letters, digits and ``_``, starting with a letter, at most 40
    characters; a built-in family's name is accepted and changes nothing.
    """
    if not FAMILY_NAME.fullmatch(name):
        raise ValueError(
            f"family name {name!r} must be lowercase letters, digits and _, starting with a "
            "letter, at most 40 characters"
        )
    if name not in FAMILIES:
        _declared[name] = None
    return name


def is_family(name: str) -> bool:
    """Whether ``name`` is a built-in family or one declared in this process."""
    return name in FAMILIES or name in _declared


def load_family_modules() -> None:
    """Import every family's module: ``jobs.<family>`` and those in ``JOB_FAMILY_MODULES``.

    Raises :class:`ConfigurationError` naming a listed module that cannot be imported.
    """
    for module in (f"jobs.{family}" for family in FAMILIES):
        importlib.import_module(module)
    for module in get_settings().family_modules:
        if module in _loaded_modules:
            continue
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigurationError(
                f"JOB_FAMILY_MODULES: cannot import {module!r} ({type(error).__name__}: {error})"
            ) from None
        _loaded_modules.add(module)


def known_families() -> tuple[str, ...]:
    """Every family: the built-in ones, then the backend's (after loading their modules)."""
    load_family_modules()
    return FAMILIES + tuple(sorted(_declared))
