"""The front door stays true: .env.example, README and docs match the code (compose: own tests)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from jobs.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def setting_variables() -> set[str]:
    """Every environment variable the settings class reads (nested ones with ``__``)."""
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"{name}__{sub}".upper() for sub in annotation.model_fields}
        else:
            names.add(name.upper())
    return names


def env_example_variables() -> dict[str, str]:
    """Variables in .env.example, set or commented out, with their example values."""
    found = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#? ?([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    """Each setting appears in .env.example exactly, with a comment line above it."""
    assert set(env_example_variables()) == setting_variables()
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            assert lines[index - 1].startswith("#"), f"no description above {line}"


def test_env_example_defaults_are_the_real_defaults(monkeypatch: object) -> None:
    """The values set in .env.example load into exactly the defaults of the settings class."""
    values = {
        k: v
        for k, v in env_example_variables().items()
        if f"\n{k}=" in "\n" + (ROOT / ".env.example").read_text()
    }
    from_example = Settings(
        _env_file=None, **{k.lower(): v for k, v in values.items() if "__" not in k}
    )
    defaults = Settings(_env_file=None)
    for key in values:
        if "__" in key:
            group, field = key.lower().split("__")
            assert str(getattr(getattr(defaults, group), field)) in (
                values[key],
                f"{values[key]}.0",
            )
        else:
            assert getattr(from_example, key.lower()) == getattr(defaults, key.lower()), key


def test_readme_commands_exist() -> None:
    """The README's quick start and test commands are targets of the Makefile."""
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("worker", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)


def test_configuration_page_names_every_setting() -> None:
    """docs/configuration.md names every variable the settings class reads."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    for variable in setting_variables():
        assert f"`{variable}`" in page, f"{variable} missing from docs/configuration.md"
