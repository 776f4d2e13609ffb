"""The one settings class: every tunable of the job runner, read from the environment.

Values come from environment variables or a ``.env`` file in the working directory; every
field is documented one-to-one in ``.env.example``. Nothing else in the project reads
``os.environ``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.errors import ConfigurationError

__all__ = ["RENAMED_SETTINGS", "FamilyTuning", "Settings", "get_settings", "load_settings"]

SUPPORTED_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: Schema and table names the settings accept: unquoted-safe, within PostgreSQL's 63 bytes.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: ``module.path:callable``, how a setting names a factory of the backend's.
FACTORY_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
OtlpProtocol = Literal["http/protobuf", "grpc"]
TRACES_EXPORTERS = ("otlp", "console", "none")
METRICS_EXPORTERS = ("otlp", "prometheus", "console", "none")
SEMCONV_OPT_INS = ("http", "http/dup", "database", "database/dup")


def _names(value: str, allowed: tuple[str, ...], what: str) -> str:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"unsupported {what} {unknown[0]!r}; use {', '.join(allowed)}")
    return ",".join(names)


class FamilyTuning(BaseModel):
    """How one family's workers run: concurrency, timeouts and shutdown grace."""

    max_jobs: PositiveInt = Field(10, description="jobs one worker runs at once")
    job_timeout: PositiveFloat = Field(300.0, description="default per-try time limit, seconds")
    shutdown_grace: NonNegativeFloat = Field(
        30.0, description="seconds a stopping worker lets running jobs finish"
    )


class Settings(BaseSettings):
    """Configuration of the job runner, producers and workers alike."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    # storage and broker
    data_dir: Path = Path("data")
    database_url: str | None = None
    database_pool_size: PositiveInt = 5
    database_schema: str | None = None
    worker_clients_factory: str | None = None
    database_version_table: str = "jobs_alembic_version"
    users_schema: str | None = None
    redis_url: str = "redis://localhost:6379"
    database_outage_retry_seconds: PositiveFloat = 900.0
    database_outage_backoff_max_seconds: PositiveFloat = 30.0
    database_startup_wait_seconds: NonNegativeFloat = 120.0
    dead_letter_max_entries: PositiveInt = 10000
    dead_letter_drain_interval: PositiveFloat = 10.0

    # families of the backend's own (modules producers import to find their jobs)
    job_family_modules: str = ""

    # scheduling and workers
    schedule_timezone: str = "UTC"
    worker_poll_delay: PositiveFloat = 1.0
    worker_lease_seconds: Annotated[float, Field(ge=1.0)] = 30.0
    redis_retry_seconds: Annotated[float, Field(ge=0.0)] = 5.0
    worker_health_check_interval: PositiveFloat = 30.0
    job_max_payload_bytes: PositiveInt = 256 * 1024
    email_worker: FamilyTuning = FamilyTuning(max_jobs=10, job_timeout=300.0, shutdown_grace=30.0)

    # outbound e-mail
    smtp_host: str = "localhost"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "assistant@localhost"
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_ca_file: Path | None = None
    smtp_timeout: PositiveFloat = 30.0
    email_batch_size: PositiveInt = 100
    email_send_concurrency: PositiveInt = 8
    email_max_attempts: PositiveInt = 8
    email_retry_base_seconds: PositiveFloat = 60.0
    email_claim_lease: PositiveFloat = 60.0

    # shared HTTP client
    http_timeout: PositiveFloat = 30.0
    http_max_connections: PositiveInt = 100

    # maintenance family
    maintenance_worker: FamilyTuning = FamilyTuning(
        max_jobs=2, job_timeout=3600.0, shutdown_grace=60.0
    )
    session_cleanup_batch_size: PositiveInt = 1000
    failed_job_retention: dt.timedelta = dt.timedelta(days=30)
    email_retention: dt.timedelta = dt.timedelta(days=90)
    sqlite_vacuum_free_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    vacuum_lock_timeout: PositiveFloat = 5.0

    # ai family
    ai_worker: FamilyTuning = FamilyTuning(max_jobs=10, job_timeout=300.0, shutdown_grace=60.0)
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_max_steps: PositiveInt = 8
    llm_max_tokens: PositiveInt = 50000
    llm_timeout: PositiveFloat = 120.0
    ai_task_max_failures: PositiveInt = 3
    # files family
    files_worker: FamilyTuning = FamilyTuning(max_jobs=4, job_timeout=3600.0, shutdown_grace=60.0)
    temp_dir: Path = Path("data/tmp")
    temp_file_max_age: dt.timedelta = dt.timedelta(hours=24)
    backup_dir: Path = Path("data/backups")
    backup_keep: PositiveInt = 8
    # sync family
    sync_worker: FamilyTuning = FamilyTuning(max_jobs=20, job_timeout=900.0, shutdown_grace=30.0)
    token_encryption_key: SecretStr | None = None
    token_encryption_old_keys: SecretStr | None = None
    google_api_base_url: str = "https://www.googleapis.com"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_page_size: Annotated[int, Field(ge=1, le=2500)] = 250
    google_rate_per_second: PositiveFloat = 10.0
    google_rate_burst: PositiveInt = 20
    notion_api_base_url: str = "https://api.notion.com/v1"
    notion_version: str = "2025-09-03"
    notion_page_size: Annotated[int, Field(ge=1, le=100)] = 100
    notion_rate_per_second: PositiveFloat = 3.0
    notion_rate_burst: PositiveInt = 6
    notion_overlap_seconds: NonNegativeFloat = 120.0
    notion_full_listing_interval: dt.timedelta = dt.timedelta(hours=24)
    notion_recheck_pages: NonNegativeInt = 25
    sync_http_attempts: PositiveInt = 4
    sync_backoff_base_seconds: PositiveFloat = 0.5
    sync_max_wait_seconds: PositiveFloat = 30.0
    sync_lease_seconds: Annotated[float, Field(ge=1.0)] = 30.0
    sync_error_retry_base_seconds: PositiveFloat = 900.0
    sync_error_retry_max_seconds: PositiveFloat = 86400.0

    # monitoring dashboard (jobs.dashboard): off unless enabled, behind credentials
    dashboard_enabled: bool = False
    dashboard_username: str | None = None
    dashboard_password: SecretStr | None = None
    dashboard_session_secret: SecretStr | None = None
    dashboard_jaeger_url: str | None = None
    dashboard_refresh_seconds: Annotated[float, Field(ge=1.0)] = 5.0

    # telemetry (the standard OpenTelemetry variables, with the SDK's defaults)
    otel_sdk_disabled: bool = False
    otel_service_name: str | None = None
    otel_traces_exporter: str = "otlp"
    otel_exporter_otlp_protocol: OtlpProtocol = "http/protobuf"
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_protocol: OtlpProtocol | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_metrics_protocol: OtlpProtocol | None = None
    otel_exporter_otlp_metrics_endpoint: str | None = None
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = "parentbased_always_on"
    otel_traces_sampler_arg: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    jobs_trace_parenting: Literal["parent", "link"] = "parent"
    otel_metrics_exporter: str = "otlp"
    otel_metric_export_interval: PositiveInt = 60000
    otel_semconv_stability_opt_in: str = ""

    # metrics, health and logs
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    metrics_sample_interval: PositiveFloat = 15.0
    worker_heartbeat_interval: PositiveFloat = 10.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_arq_job_lines: bool = False

    @field_validator("schedule_timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("temp_file_max_age", "notion_full_listing_interval", mode="before")
    @classmethod
    def _duration_in_seconds(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdecimal():
            return float(value)
        return value

    @field_validator("temp_file_max_age", "notion_full_listing_interval")
    @classmethod
    def _positive_duration(cls, value: dt.timedelta) -> dt.timedelta:
        if value <= dt.timedelta(0):
            raise ValueError("must be a positive duration, e.g. PT24H, 24:00:00 or 86400")
        return value

    @field_validator("email_retention")
    @classmethod
    def _email_retention(cls, value: dt.timedelta) -> dt.timedelta:
        # a daily summary's outbox row is what keeps it from being queued twice in its day
        if value < dt.timedelta(days=2):
            raise ValueError("must be at least P2D (e-mails are kept at least two days)")
        return value

    @field_validator("otel_traces_exporter")
    @classmethod
    def _traces_exporters(cls, value: str) -> str:
        return _names(value, TRACES_EXPORTERS, "exporter") or "none"

    @field_validator("otel_metrics_exporter")
    @classmethod
    def _metrics_exporters(cls, value: str) -> str:
        return _names(value, METRICS_EXPORTERS, "exporter") or "none"

    @field_validator("otel_semconv_stability_opt_in")
    @classmethod
    def _semconv_opt_in(cls, value: str) -> str:
        return _names(value, SEMCONV_OPT_INS, "opt-in")

    @field_validator(
        "otel_exporter_otlp_endpoint",
        "otel_exporter_otlp_traces_endpoint",
        "otel_exporter_otlp_metrics_endpoint",
    )
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("dashboard_jaeger_url")
    @classmethod
    def _jaeger_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:16686")
        return value.rstrip("/") or None if value else None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        from jobs.redis_connection import redis_options

        redis_options(value)  # raises ValueError saying what is wrong
        return value

    @field_validator("database_schema", "database_version_table", "users_schema")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a plain SQL identifier (letters, digits and _, at most 63)"
            )
        return value

    @field_validator("worker_clients_factory")
    @classmethod
    def _factory_path(cls, value: str | None) -> str | None:
        if value is not None and not FACTORY_PATH.fullmatch(value):
            raise ValueError(f"{value!r} is not module:callable (e.g. myapp.jobs:worker_clients)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url  # SQLAlchemy is imported only when a URL is set
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if url.drivername not in SUPPORTED_DATABASE_DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of "
                + ", ".join(SUPPORTED_DATABASE_DRIVERS)
            )
        return value

    @model_validator(mode="after")
    def _smtp_auth_pairs(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD must be set together")
        return self

    @model_validator(mode="after")
    def _dashboard_credentials(self) -> Settings:
        if (self.dashboard_username is None) != (self.dashboard_password is None):
            raise ValueError("DASHBOARD_USERNAME and DASHBOARD_PASSWORD must be set together")
        password = self.dashboard_password
        if password is not None and len(password.get_secret_value()) < 12:
            raise ValueError("DASHBOARD_PASSWORD must be at least 12 characters")
        secret = self.dashboard_session_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("DASHBOARD_SESSION_SECRET must be at least 32 characters")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: ``DATABASE_URL``, or a SQLite file under ``DATA_DIR``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'jobs.db').as_posix()}"

    @property
    def family_modules(self) -> tuple[str, ...]:
        """``JOB_FAMILY_MODULES`` as module names."""
        return tuple(name.strip() for name in self.job_family_modules.split(",") if name.strip())

    @property
    def old_token_keys(self) -> tuple[str, ...]:
        """``TOKEN_ENCRYPTION_OLD_KEYS`` as keys (comma-separated, newest first)."""
        value = self.token_encryption_old_keys
        text = value.get_secret_value() if value is not None else ""
        return tuple(key.strip() for key in text.split(",") if key.strip())

    @property
    def timezone(self) -> ZoneInfo:
        """``SCHEDULE_TIMEZONE`` as a time-zone object."""
        return ZoneInfo(self.schedule_timezone)

    def service_name(self, family: str) -> str:
        """The OpenTelemetry service name of a family's workers."""
        return self.otel_service_name or f"jobs-{family}"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        variable = "__".join(str(part) for part in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        # a rule between settings names its variables itself
        lines.append(f"{variable}: {message}" if variable else message)
    return "invalid configuration: " + "; ".join(lines)


#: Variables no longer read because their meaning changed, and what replaced each.
RENAMED_SETTINGS = {
    "EMAIL_CLAIM_TIMEOUT": (
        "EMAIL_CLAIM_LEASE",
        "an outbox claim is now a lease its worker renews, 60 s by default",
    ),
}


def _renamed_in_use(env_file: object) -> list[str]:
    """The lines refusing each renamed variable set in the environment or the env file."""
    names = {name.upper() for name in os.environ}
    if isinstance(env_file, str | Path) and Path(env_file).is_file():
        from dotenv import dotenv_values

        names |= {name.upper() for name in dotenv_values(env_file)}
    return [
        f"{old}: no longer read; set {new} instead ({why}) and remove {old}"
        for old, (new, why) in RENAMED_SETTINGS.items()
        if old in names
    ]


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (and ``overrides``), or raise ConfigurationError.

    A variable of :data:`RENAMED_SETTINGS` still set is refused, naming its replacement, rather
    than ignored.
    """
    renamed = _renamed_in_use(overrides.get("_env_file", Settings.model_config.get("env_file")))
    if renamed:
        raise ConfigurationError("invalid configuration: " + "; ".join(renamed))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
