"""The docs name what exists, and name all of it: jobs, families, settings, CLI commands, links.

Both ways: a job, family, setting or ``python -m jobs`` command named in README.md or docs/
must exist in the code, and every one the code has must be named somewhere in them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from jobs.cli import _parser
from jobs.constants import FAMILIES
from jobs.registry import JobSpec, all_jobs
from jobs.settings import RENAMED_SETTINGS, Settings
from tests.test_project_files import env_example_variables, setting_variables

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
#: Jobs of the example backend's own family (examples/backend/reports.py), named in the docs.
EXAMPLE_JOBS = {"usage_report"}
#: UPPER_CASE names in the docs that are not settings of the jobs, and where they belong.
NOT_SETTINGS = {
    "DASHBOARD_SCREENSHOTS": "the dashboard browser test writes screenshots there",
    "OTEL_EXPORTER_OTLP_HEADERS": "read by the OpenTelemetry exporters themselves",
    "O_NOFOLLOW": "an open(2) flag",
}


def shipped_jobs() -> list[JobSpec]:
    """The jobs this package declares (other tests declare sample jobs in the same process)."""
    return [spec for spec in all_jobs() if spec.function.__module__.startswith("jobs.")]


def text_of(path: Path) -> str:
    """A page's text."""
    return path.read_text(encoding="utf-8")


def all_text() -> str:
    """Every page, one after the other."""
    return "\n".join(text_of(page) for page in PAGES)


def test_every_relative_link_and_anchor_resolves() -> None:
    """Each ``[text](target)`` in the repository finds its file, and its ``#anchor`` a heading."""
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", text_of(page)):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            assert resolved.exists(), f"{page.name}: broken link {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", text_of(resolved), re.MULTILINE)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.name}: no heading for {target}"


def test_every_page_is_linked_from_the_readme() -> None:
    """The README's list reaches every page of docs/."""
    readme = text_of(ROOT / "README.md")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not linked from README.md"


def test_the_families_page_lists_exactly_the_declared_jobs() -> None:
    """The table of every job in docs/families.md holds each declared job once, and no other."""
    page = text_of(ROOT / "docs" / "families.md")
    listed = re.findall(r"^\| (\w+) \| `(\w+)[`(]", page, re.MULTILINE)
    declared = {(spec.family, spec.name) for spec in shipped_jobs()}
    assert sorted(listed) == sorted(declared)


def test_jobs_named_in_commands_and_calls_exist() -> None:
    """``enqueue_job("X"``, ``enqueue X``, ``FAMILY=X``, ``worker X``, ``jobs.X.`` are real.

    Lines showing the error for an unknown job (``UnknownJobError``) are left out.
    """
    text = "\n".join(line for line in all_text().splitlines() if "UnknownJobError" not in line)
    jobs = {spec.name for spec in shipped_jobs()} | EXAMPLE_JOBS
    named = set(re.findall(r"enqueue_job\(\s*\"(\w+)\"", text))
    named |= set(re.findall(r"python -m jobs enqueue ([a-z_]+)", text))
    assert named and named <= jobs, named - jobs
    families = set(re.findall(r"\bjobs\.([a-z_]+)\.WorkerSettings", text))
    families |= set(re.findall(r"FAMILY=([a-z_]+)", text))
    families |= set(re.findall(r"python -m jobs worker ([a-z_]+)", text))
    families |= set(re.findall(r"health --self ([a-z_]+)", text))
    assert families >= set(FAMILIES)
    assert families <= set(FAMILIES), families - set(FAMILIES)
    families_page = text_of(ROOT / "docs" / "families.md")
    for family in FAMILIES:
        assert f"\n## {family}\n" in families_page, f"no section for the {family} family"


def configuration_rows() -> dict[str, tuple[str, str]]:
    """docs/configuration.md's table: variable -> (default cell, meaning cell)."""
    page = text_of(ROOT / "docs" / "configuration.md")
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| (.*?) \| (.*) \|$", page, re.MULTILINE)
    table = {name: (default, meaning) for name, default, meaning in rows}
    assert len(table) == len(rows), "a variable has two rows"
    return table


def default_of(variable: str) -> object:
    """The settings class's default for ``variable`` (nested ones through ``__``)."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    if "__" in variable:
        group, field = variable.lower().split("__")
        return getattr(getattr(defaults, group), field)
    return getattr(defaults, variable.lower())


def is_secret(variable: str) -> bool:
    """Whether the settings class holds ``variable`` as a secret (never logged or shown)."""
    field = Settings.model_fields.get(variable.lower())
    return field is not None and field.annotation in (SecretStr, SecretStr | None)


def test_the_configuration_page_has_every_setting_once_with_its_default() -> None:
    """One row per variable of jobs.settings.Settings, none more, and the default it really has.

    ``unset`` is a default of None (its computed value may follow), ``empty`` the empty string;
    otherwise the first code span loads, as the variable's value, into the class's default.
    """
    table = configuration_rows()
    assert set(table) == setting_variables()
    for variable, (default, meaning) in table.items():
        assert meaning.strip(), f"{variable} has no meaning"
        real = default_of(variable)
        if default.startswith("unset"):
            assert real is None, f"{variable}: documented unset, is {real!r}"
        elif default == "empty":
            assert real == "", f"{variable}: documented empty, is {real!r}"
        else:
            value = re.match(r"`([^`]*)`", default)
            assert value, f"{variable}: default cell {default!r} is not `value`, unset or empty"
            if "__" in variable:
                assert str(real) in (value.group(1), f"{value.group(1)}.0"), variable
            else:
                loaded = Settings(_env_file=None, **{variable.lower(): value.group(1)})  # type: ignore[call-arg]
                assert getattr(loaded, variable.lower()) == real, variable
        assert is_secret(variable) == meaning.startswith("secret"), f"{variable}: say secret"


def same_value(shown: str, example: str) -> bool:
    """Whether two spellings of a default are the same value (``120`` and ``120.0`` are)."""
    try:
        return float(shown) == float(example)
    except ValueError:
        return shown == example


def test_env_example_and_configuration_page_agree_on_every_default() -> None:
    """A value set in .env.example is the value the configuration page shows as default."""
    table = configuration_rows()
    example = text_of(ROOT / ".env.example")
    for variable, value in env_example_variables().items():
        if f"\n{variable}=" not in "\n" + example:
            assert table[variable][0].startswith(("unset", "empty")), variable
            continue
        default = table[variable][0]
        if value == "":
            assert default == "empty", variable
        else:
            shown = re.match(r"`([^`]*)`", default)
            assert shown and same_value(shown.group(1), value), (
                f"{variable}: {value!r}, {default!r}"
            )


def test_upper_case_names_in_the_docs_are_settings_or_accounted_for() -> None:
    """Every ``SOME_NAME`` in the docs is a setting, a test or deployment variable, or listed.

    So a renamed or removed setting cannot live on in a page.
    """
    settings = setting_variables()
    tests = set(re.findall(r"JOBS_TEST_\w+", text_of(ROOT / "tests" / "conftest.py")))
    deployment = set(env_example_variables_of(ROOT / "compose" / "deploy.env.example"))
    renamed = set(RENAMED_SETTINGS)  # read only to be refused, naming their replacements
    known = settings | tests | deployment | renamed | set(NOT_SETTINGS) | {"CI"}
    for page in PAGES:
        names = set(
            re.findall(r"(?<![\w….])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w_])", text_of(page))
        )
        # GF_: Grafana's own variables; MY_: the backend's own names in examples
        unknown = {name for name in names - known if not name.startswith(("GF_", "MY_"))}
        assert not unknown, f"{page.name} names {sorted(unknown)}, which nothing reads"
    text = all_text()
    for variable in tests:
        assert variable in text, f"test variable {variable} is not documented"


def env_example_variables_of(path: Path) -> list[str]:
    """The variables an env-file example sets."""
    return re.findall(r"^([A-Z][A-Z0-9_]+)=", text_of(path), re.MULTILINE)


def cli_commands() -> set[tuple[str, ...]]:
    """Every command of ``python -m jobs``: ``(command,)`` and ``(command, action)``."""
    found: set[tuple[str, ...]] = set()

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.add((*prefix, name))
                    walk(sub, (*prefix, name))

    walk(_parser(), ())
    return found


def documented_commands() -> set[tuple[str, ...]]:
    """Commands the docs name (``python -m jobs A [B]``, the operations page's table).

    ``B`` counts only where ``A`` has sub-commands (``failed list``), not for ``enqueue NAME``.
    """
    with_actions = {command[0] for command in cli_commands() if len(command) == 2}
    operations = text_of(ROOT / "docs" / "operations.md")
    mentions = re.findall(r"python -m jobs ([a-z_-]+)(?: ([a-z_-]+))?", all_text())
    mentions += [
        re.findall(r"^([a-z_-]+)(?: ([a-z_-]+))?", cell)[0]
        for cell in re.findall(r"^\| `([a-z][^`]*)` \|", operations, re.MULTILINE)
    ]
    return {
        (first, second) if first in with_actions and second else (first,)
        for first, second in mentions
    }


def test_every_cli_command_is_documented_and_every_documented_one_exists() -> None:
    """Each command and sub-command of the parser is named in the docs, and nothing else is."""
    real = cli_commands()
    named = documented_commands()
    assert named <= real, f"no such commands: {sorted(named - real)}"
    named |= {command[:1] for command in named}
    assert real <= named, f"not documented: {sorted(real - named)}"


@pytest.mark.parametrize(
    "target", sorted(set(re.findall(r"(?:^|`|\$ )make (\w+)", all_text(), re.MULTILINE)))
)
def test_make_targets_named_in_the_docs_exist(target: str) -> None:
    """``make X`` in a page is a target of the Makefile."""
    assert re.search(rf"^{target}:", text_of(ROOT / "Makefile"), re.MULTILINE), target


def test_the_architecture_layout_names_every_module_and_no_other() -> None:
    """docs/architecture.md's layout lists each module and subpackage of jobs/, and only those."""
    page = text_of(ROOT / "docs" / "architecture.md")
    block = re.search(r"^## Layout\n\n```\njobs/\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert block, "no layout block"
    named = set(re.findall(r"(?:^|\s)(\w+\.py|\w+/)(?=\s)", block.group(1)))
    modules = {
        path.name + ("/" if path.is_dir() else "")
        for path in (ROOT / "jobs").iterdir()
        if (path.suffix == ".py") or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert named == modules


def test_tests_named_in_the_docs_exist() -> None:
    """``tests/x.py`` and ``tests/x.py::test_y`` (or ``::test_y`` after one) name real tests."""
    text = all_text()
    for path, name in re.findall(r"(tests/\w+\.py)(?:::(\w+))?", text):
        assert (ROOT / path).is_file(), path
        if name:
            assert f"def {name}(" in text_of(ROOT / path), f"{path}::{name}"
    every_test = "\n".join(text_of(path) for path in (ROOT / "tests").glob("*.py"))
    for name in re.findall(r"`::(\w+)`", text):
        assert f"def {name}(" in every_test, name


def test_python_names_of_the_package_in_the_docs_exist() -> None:
    """Each ``jobs.module`` or ``jobs.module.Name`` in a code span imports or resolves.

    Metric and attribute names that look alike (``jobs.ai.runs``) are string constants of the
    package, and are left out.
    """
    import importlib

    source = "\n".join(path.read_text() for path in (ROOT / "jobs").rglob("*.py"))
    constants = set(re.findall(r"\"(jobs(?:\.\w+)+)\"", source))
    names = set(re.findall(r"`(jobs(?:\.\w+)+)", all_text())) - constants
    assert names
    for dotted in sorted(names):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                assert hasattr(found, attribute), f"{dotted}: no {attribute}"
                found = getattr(found, attribute)
            break
        else:
            raise AssertionError(f"{dotted} does not import")


def compose_commands() -> list[str]:
    """Every ``docker compose …`` command in the pages, continued lines joined."""
    text = all_text().replace("\\\n", " ")
    return [re.sub(r"\s+", " ", c) for c in re.findall(r"docker compose [^`\n]*", text)]


def test_compose_commands_name_files_in_order_and_services_they_define() -> None:
    """Each documented ``docker compose`` uses an environment's files in order, and its services.

    The files after ``-f`` are those of one environment (base.yml first, as Compose needs), and a
    service named to ``run``, ``exec``, ``restart``, ``logs``, ``--scale`` or ``up -d`` exists in
    that environment's merged stack.
    """
    from tests.compose_files import ENVIRONMENTS, stack

    commands = compose_commands()
    assert len(commands) > 10
    for command in commands:
        files = tuple(name for name in re.findall(r"-f compose/([\w.]+)", command))
        if not files:
            continue  # prose such as "docker compose … restart worker-email" refers back
        matches = [env for env, names in ENVIRONMENTS.items() if names[: len(files)] == files]
        assert matches and files in ENVIRONMENTS.values(), command
        services = set(stack(matches[0])["services"])
        named = re.findall(r"(?:run --rm|exec -T|restart|logs) ([\w-]+)", command)
        named += re.findall(r"--scale ([\w-]+)=", command)
        tail = re.search(r" up -d((?: [a-z][\w-]*)+)\s*$", command)
        named += tail.group(1).split() if tail else []
        assert set(named) <= services, f"{command}: no service {set(named) - services}"
