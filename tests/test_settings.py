"""The settings class: defaults, validation naming the variable, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import ConfigurationError, load_settings
from jobs.redaction import Redactor


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL: must be a redis://"),
        ("DATABASE_URL", "mysql://localhost/db", "DATABASE_URL: driver 'mysql' is not supported"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: is not a database URL"),
        ("SCHEDULE_TIMEZONE", "Mars/Base", "SCHEDULE_TIMEZONE: unknown IANA time zone"),
        ("EMAIL_BATCH_SIZE", "-5", "EMAIL_BATCH_SIZE: Input should be greater than 0"),
        ("SMTP_PORT", "70000", "SMTP_PORT: Input should be less than or equal to 65535"),
        ("SMTP_TLS", "maybe", "SMTP_TLS: Input should be 'none', 'starttls' or 'tls'"),
        ("EMAIL_WORKER__MAX_JOBS", "0", "EMAIL_WORKER__MAX_JOBS: Input should be greater than 0"),
        # the outbox row of a daily summary must outlive its local day, or it is sent again
        ("EMAIL_RETENTION", "PT12H", "EMAIL_RETENTION: must be at least P2D"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """Each invalid environment value gives one ConfigurationError naming that variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match="invalid configuration: ") as error:
        load_settings()
    assert message in str(error.value)


def test_a_renamed_variable_is_refused_naming_its_replacement(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """EMAIL_CLAIM_TIMEOUT, in the environment or in the env file, stops start-up naming the new."""
    monkeypatch.setenv("email_claim_timeout", "600")
    with pytest.raises(
        ConfigurationError, match="EMAIL_CLAIM_TIMEOUT: no longer read; set EMAIL_CLAIM_LEASE"
    ):
        load_settings(_env_file=None)
    monkeypatch.delenv("email_claim_timeout")
    env_file = tmp_path / ".env"
    env_file.write_text("EMAIL_CLAIM_TIMEOUT=600\n")
    with pytest.raises(ConfigurationError, match="EMAIL_CLAIM_TIMEOUT: no longer read"):
        load_settings(_env_file=env_file)
    assert load_settings(_env_file=None).email_claim_lease == 60


def test_defaults_give_an_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration: SQLite under DATA_DIR, local Redis, UTC schedules."""
    for name in ("DATABASE_URL", "REDIS_URL", "SCHEDULE_TIMEZONE", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.resolved_database_url == "sqlite+aiosqlite:///data/jobs.db"
    assert settings.redis_url == "redis://localhost:6379"
    assert settings.timezone.key == "UTC"


def test_smtp_password_never_shows_in_repr_or_redacted_text() -> None:
    """SMTP_PASSWORD is a SecretStr; the redactor masks it and a database password in messages."""
    settings = load_settings(
        smtp_username="mailer",
        smtp_password="s3cr3t-pass",
        database_url="postgresql+asyncpg://app:db-pass-9@db/app",
    )
    assert "s3cr3t-pass" not in repr(settings) and "s3cr3t-pass" not in str(settings.model_dump())
    redact = Redactor(settings)
    assert redact("login failed for s3cr3t-pass at db-pass-9") == "login failed for *** at ***"


def test_username_without_password_is_refused() -> None:
    """SMTP_USERNAME without SMTP_PASSWORD is a configuration error."""
    with pytest.raises(ConfigurationError, match="SMTP_USERNAME and SMTP_PASSWORD"):
        load_settings(smtp_username="mailer")


def test_a_rule_between_settings_is_one_line_naming_them_without_a_placeholder() -> None:
    """A rule over several variables reads as the rule, with no ``(settings):`` in front."""
    with pytest.raises(ConfigurationError) as refused:
        load_settings(dashboard_username="admin", dashboard_password="short")
    assert str(refused.value) == (
        "invalid configuration: DASHBOARD_PASSWORD must be at least 12 characters"
    )
