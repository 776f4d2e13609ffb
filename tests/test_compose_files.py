"""compose/: valid Compose files whose stacks restart, limit, health-check and protect workers."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr

from jobs import JobsPool
from jobs.constants import FAMILIES
from jobs.settings import FamilyTuning, Settings, load_settings
from tests.compose_files import (
    COMPOSE,
    ENVIRONMENTS,
    INTERPOLATION,
    ROOT,
    stack,
    variables_used,
)
from tests.smtp_server import SmtpServer, free_port
from tests.test_observability_process import start_worker, stop_worker
from tests.test_project_files import setting_variables
from tests.test_worker_process import worker_environment

CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
ONE_SHOT = {"migrate"}
DEPLOYED = ("stage", "prod")
#: Families whose work grows with users and so run several replicas when deployed.
SCALED_FAMILIES = ("email", "sync")
#: Secrets of the settings class, as environment variables.
SECRET_SETTINGS = {
    name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
}


def seconds(duration: str) -> float:
    """A Compose duration such as ``1m30s`` or ``40s`` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(a + b for a, b in parts) == duration, duration
    return sum(float(amount) * units[unit] for amount, unit in parts)


#: Secrets empty but for a while (old keys during a rotation): ``${NAME?message}``, set even
#: if empty, so a forgotten variable still stops Compose.
OPTIONAL_SECRETS = {"TOKEN_ENCRYPTION_OLD_KEYS"}


def required(value: str, *, may_be_empty: bool = False) -> bool:
    """The value is a variable that Compose refuses to run without (``${NAME:?message}``)."""
    match = INTERPOLATION.fullmatch(value)
    forms = (":?", "?") if may_be_empty else (":?",)
    return bool(match and match.group(2) in forms and match.group(3))


def test_every_file_and_every_merged_stack_validates_against_the_compose_schema(
    tmp_path: Path,
) -> None:
    """check-jsonschema's Compose specification accepts each file and each merged stack."""
    merged = []
    for environment in ENVIRONMENTS:
        path = tmp_path / f"{environment}.merged.yml"
        path.write_text(yaml.safe_dump(stack(environment), sort_keys=False))
        merged.append(path)
    files = sorted(COMPOSE.glob("*.yml"))
    assert {f.name for f in files} >= {"base.yml", "dev.yml", "stage.yml", "prod.yml"}
    compose_files = [f for f in files if f.name != "prometheus.yml"]
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", *compose_files, *merged],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_long_running_services_restart_and_the_migration_runs_once(environment: str) -> None:
    """Every service but the migration step restarts when it exits; migrate runs once."""
    for name, service in stack(environment)["services"].items():
        expected = {"no"} if name in ONE_SHOT else {"always", "unless-stopped"}
        assert service.get("restart") in expected, (environment, name)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_worker_is_limited_given_time_to_stop_and_checks_its_own_heartbeat(
    environment: str,
) -> None:
    """Per family: CPU and memory limits, stop grace > shutdown grace, a per-process check."""
    services = stack(environment)["services"]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for family in FAMILIES:
        worker = services[f"worker-{family}"]
        assert worker["command"] == ["arq", f"jobs.{family}.WorkerSettings"]
        tuning: FamilyTuning = getattr(defaults, f"{family}_worker")
        grace = float(
            worker["environment"].get(f"{family.upper()}_WORKER__SHUTDOWN_GRACE")
            or tuning.shutdown_grace
        )
        assert seconds(worker["stop_grace_period"]) >= grace + 10, (family, grace)
        limits = worker["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[MG]", limits["memory"])
        assert worker["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "jobs",
            "health",
            "--self",
            family,
        ]
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
        unknown = set(worker["environment"]) - setting_variables()
        assert unknown == set(), (environment, family, unknown)
    assert services["migrate"]["command"] == ["python", "-m", "jobs", "migrate"]
    assert {"redis", "postgres", "jaeger", "prometheus", "grafana", "migrate"} <= set(services)
    if environment != "prod":
        assert "mailpit" in services  # development and staging never mail real people


def test_the_limits_follow_each_family_s_work() -> None:
    """The heavier families (files, sync) get more memory than the light ones (maintenance)."""
    services = stack("prod")["services"]

    def memory(family: str) -> int:
        value = services[f"worker-{family}"]["deploy"]["resources"]["limits"]["memory"]
        return int(value[:-1]) * (1024 if value.endswith("G") else 1)

    assert memory("files") > memory("email") and memory("sync") > memory("email")
    assert memory("maintenance") <= memory("email") < memory("ai")


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployed_stacks_take_every_secret_from_the_environment(environment: str) -> None:
    """Stage and prod: secrets are ``${NAME:?…}``; the URLs' passwords too; no dev key leaks."""
    services = stack(environment)["services"]
    secret_names = SECRET_SETTINGS | {
        "POSTGRES_PASSWORD",
        "REDISCLI_AUTH",
        "GF_SECURITY_ADMIN_PASSWORD",
    }
    seen = set()
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            if variable in secret_names:
                seen.add(variable)
                may_be_empty = variable in OPTIONAL_SECRETS
                assert required(str(value), may_be_empty=may_be_empty), (name, variable, value)
            if variable in ("REDIS_URL", "DATABASE_URL"):
                password = re.search(r"://[^:/@]*:([^@]+)@", str(value))
                assert password and required(password.group(1)), (name, variable, value)
    assert {"TOKEN_ENCRYPTION_KEY", "SMTP_PASSWORD", "LLM_API_KEY", "POSTGRES_PASSWORD"} <= seen
    text = "\n".join((COMPOSE / f).read_text() for f in ENVIRONMENTS[environment])
    development_key = stack("dev")["services"]["worker-sync"]["environment"]["TOKEN_ENCRYPTION_KEY"]
    assert development_key.split(":-")[1].rstrip("}") not in text


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployed_stacks_publish_no_data_port_and_bind_web_uis_to_localhost(
    environment: str,
) -> None:
    """Stage and prod: Redis and PostgreSQL publish nothing; other ports only on 127.0.0.1."""
    services = stack(environment)["services"]
    assert "ports" not in services["redis"] and "ports" not in services["postgres"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployed_redis_needs_a_password_and_keeps_an_append_only_file(environment: str) -> None:
    """Stage and prod Redis: --requirepass from the environment, AOF on, health check logs in."""
    redis = stack(environment)["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert required(command[command.index("--requirepass") + 1])
    assert required(redis["environment"]["REDISCLI_AUTH"])  # read by redis-cli in the check
    assert "redis-data:/data" in redis["volumes"]


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployed_stacks_scale_the_families_that_grow(environment: str) -> None:
    """Stage and prod run several email and sync workers (their jobs are claim-safe)."""
    services = stack(environment)["services"]
    for family in SCALED_FAMILIES:
        assert services[f"worker-{family}"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_images_are_pinned(environment: str) -> None:
    """Every image names a version (never :latest); deployed stacks require JOBS_IMAGE."""
    for name, service in stack(environment)["services"].items():
        image = service["image"]
        if image.startswith("${"):
            assert environment in DEPLOYED and required(image), (name, image)
            continue
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), (name, image)
        assert not image.endswith(":latest"), (name, image)
        built_here = ("assistant-jobs:dev", "assistant-jobs-web:dev")  # worker and web targets
        assert re.search(r":v?\d", image) or image in built_here, (name, image)


def test_deploy_env_example_lists_exactly_what_stage_and_prod_read() -> None:
    """compose/deploy.env.example names every variable the deployed files read, and no more."""
    text = (COMPOSE / "deploy.env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert listed == variables_used("prod") == variables_used("stage")
    assert "${" not in text


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_prometheus_scrapes_every_worker_at_its_metrics_port(environment: str) -> None:
    """prometheus.yml discovers each worker service's replicas at the METRICS_PORT they serve."""
    services = stack(environment)["services"]
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    discovered = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    workers = {name for name in services if name.startswith("worker-")}
    assert {name for name, _ in discovered} == workers
    for name, port in discovered:
        assert int(services[name]["environment"]["METRICS_PORT"]) == port
        # pushed over OTLP, metrics would go to Jaeger, which takes traces only
        assert "otlp" not in services[name]["environment"]["OTEL_METRICS_EXPORTER"]
    volumes = services["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


def test_grafana_provisions_the_prometheus_datasource_its_dashboard_uses() -> None:
    """The dashboard is valid JSON and every panel queries the provisioned datasource."""
    datasources = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    [prometheus] = datasources
    assert prometheus["url"] == "http://prometheus:9090"
    dashboard = json.loads((COMPOSE / "grafana/dashboards/jobs.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == prometheus["uid"]
            assert target["expr"].strip()


def dashboard_metric_names() -> set[str]:
    """The metric names the dashboard's queries read (functions and labels left out)."""
    dashboard = json.loads((COMPOSE / "grafana/dashboards/jobs.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\[[^]]*\]|\{[^}]*\}|\"[^\"]*\"|by \([^)]*\)", "", target["expr"])
            names |= {
                word
                for word in re.findall(r"[a-z_][a-z0-9_]*", expr)
                if word not in {"sum", "max", "rate", "histogram_quantile", "time", "by", "le"}
            }
    return names


def test_files_worker_volume_is_created_for_the_image_s_user() -> None:
    """The files volume's mount point exists in the image, owned by the non-root user."""
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    worker = stack("prod")["services"]["worker-files"]
    [volume] = worker["volumes"]
    mount = volume.split(":")[1]
    for variable in ("TEMP_DIR", "BACKUP_DIR"):
        directory = worker["environment"][variable]
        assert directory.startswith(mount + "/")
        assert directory in dockerfile.split("mkdir -p", 1)[1].split("\n", 1)[0]
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert set(user) == {"jobs"}
    assert f"chown -R jobs:jobs {mount}" in dockerfile


def test_dockerfile_installs_locked_dependencies_before_the_code() -> None:
    """Each target installs its lock with hashes, then copies jobs/; the worker has no web."""
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.S | re.M))
    assert set(stages) == {"base", "worker", "web"}
    assert list(stages)[-1] == "worker"  # the default target
    for target, lock in (("worker", "requirements.lock"), ("web", "requirements-web.lock")):
        body = stages[target]
        install = body.index(f"pip install --require-hashes --no-deps -r {lock}")
        assert body.index(f"COPY {lock}") < install < body.index("COPY jobs ./jobs")
    assert "web" not in stages["worker"]
    assert stack("dev")["services"]["migrate"]["build"]["target"] == "worker"
    [python] = re.findall(r"^FROM python:(\d+\.\d+)\.\d+-slim", dockerfile, re.MULTILINE)
    assert f"--python-version {python}" in (ROOT / "requirements.lock").read_text()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    """.dockerignore excludes the virtualenv, data, backups, git, caches and .env files."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    expected = {".git", ".venv", "data/", "backups/", ".env", "**/__pycache__", ".mypy_cache"}
    assert expected <= ignored
    assert {".pytest_cache", ".ruff_cache"} <= ignored
    assert not {"jobs", "jobs/", "requirements.lock", "requirements-web.lock"} & ignored


def with_defaults(value: object) -> str:
    """A compose value as Compose fills it in when no variable is set (``${X:-default}``)."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", str(value))


@pytest.mark.parametrize("family", FAMILIES)
def test_each_development_worker_passes_its_start_up_check_with_no_variable_set(
    family: str,
) -> None:
    """`up` on a clean clone: each dev worker's settings load and pass its family's check."""
    import importlib

    environment = stack("dev")["services"][f"worker-{family}"]["environment"]
    values = {name.lower(): with_defaults(value) for name, value in environment.items()}
    settings = load_settings(**values)
    check = importlib.import_module(f"jobs.{family}").WorkerSettings.__dict__.get("settings_check")
    if check is not None:
        check.__func__(settings)  # raises ConfigurationError naming what is missing


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployed_sync_worker_requires_its_key_and_oauth_client(environment: str) -> None:
    """Stage and prod never fall back to the development key or client: `up` needs them set."""
    worker = stack(environment)["services"]["worker-sync"]["environment"]
    for variable in ("TOKEN_ENCRYPTION_KEY", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"):
        assert required(worker[variable]), variable


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dashboard_queries_metrics_a_worker_serves(
    pool: JobsPool, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Every metric the Grafana dashboard reads is on a real worker's /metrics after a job."""
    port = free_port()
    env = worker_environment(settings) | {
        "METRICS_PORT": str(port),
        "WORKER_HEARTBEAT_INTERVAL": "0.5",
        "METRICS_SAMPLE_INTERVAL": "0.5",
    }
    worker = start_worker(env, tmp_path)
    try:
        job = await pool.enqueue_job("send_email", to="m@example.com", subject="s", text="t")
        assert job is not None
        await job.result(timeout=30)
        async with httpx.AsyncClient() as client:
            scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await asyncio.to_thread(stop_worker, worker)
    served = {line.split("{")[0].split(" ")[0] for line in scraped.splitlines()}
    missing = dashboard_metric_names() - served
    assert dashboard_metric_names() and missing == set(), missing
