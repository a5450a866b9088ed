"""docker-compose.yaml: valid Compose, and laid out like Airflow 3's official compose file.

tests/data/compose-spec.json is the Compose Specification's JSON schema, vendored unchanged from
github.com/compose-spec/compose-spec, schema/compose-spec.json at commit
00655e2222608fa6eaecdf12ac5195889ca2244a (74,133 characters, draft-07).

No Docker engine is needed: the file is read with yaml.safe_load (which resolves the anchors and
``<<`` merges the way Compose does) and checked against the schema and the stack's conventions.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

from socialsync.local.settings import RECOVERY

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS_FILE = ROOT / "airflow_settings.yaml"

# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|FERNET|TOKEN|_KEY$")

AIRFLOW_MOUNTS = {
    "/opt/airflow/dags": "./dags",
    "/opt/airflow/logs": "./logs",
    "/opt/socialsync/include": "./include",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].startswith("https://json-schema.org/draft-07/schema")
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def interpolate(value: str, env: dict[str, str]) -> str:
    """What Compose makes of a string given these variables (raises on a required one that is missing)."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def schema_errors(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(document)]


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from the x-airflow anchor (they carry its executor setting)."""
    return {name: service for name, service in services(compose).items()
            if "AIRFLOW__CORE__EXECUTOR" in (service.get("environment") or {})}


def one_shot_services(compose: dict[str, Any]) -> set[str]:
    """Services others wait on to complete: they run once and exit, so they have no healthcheck."""
    return {dependency for service in services(compose).values()
            for dependency, spec in (service.get("depends_on") or {}).items()
            if spec.get("condition") == "service_completed_successfully"}


def service_running(compose: dict[str, Any], command: str) -> tuple[str, dict[str, Any]]:
    [(name, service)] = [(name, service) for name, service in services(compose).items()
                         if service.get("command") == command]
    return name, service


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the service's short-syntax volumes."""
    result = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        result[target] = source
    return result


def interpolated_text(node: Any) -> str:
    """Every string of the loaded file (keys and values, comments left out), one a line."""
    if isinstance(node, dict):
        return "\n".join(interpolated_text(key) + "\n" + interpolated_text(value) for key, value in node.items())
    if isinstance(node, list):
        return "\n".join(interpolated_text(item) for item in node)
    return node if isinstance(node, str) else ""


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def init_script(compose: dict[str, Any]) -> str:
    init = services(compose)["airflow-init"]
    assert init["entrypoint"] == "/bin/bash" and init["command"][0] == "-c"
    return init["command"][1]


# --- The Compose Specification ------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose, validator):
    assert len(services(compose)) >= 9  # not vacuous: the whole stack is there
    assert schema_errors(validator, compose) == []


@pytest.mark.parametrize("break_it", [
    pytest.param(lambda c: c["services"]["airflow-scheduler"]["depends_on"]["postgres"].update(
        condition="service_ready"), id="unknown depends_on condition"),
    pytest.param(lambda c: c["services"]["airflow-worker"].update(helthcheck={"test": ["CMD", "true"]}),
                 id="unknown service key"),
    pytest.param(lambda c: c["services"]["redis"]["healthcheck"].update(intervall="5s"), id="unknown healthcheck key"),
    pytest.param(lambda c: c["services"]["airflow-apiserver"]["depends_on"]["airflow-init"].pop("condition"),
                 id="depends_on without a condition"),
    pytest.param(lambda c: c.update(service={}), id="unknown top-level key"),
])
def test_the_schema_rejects_a_broken_compose_file(compose, validator, break_it):
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert schema_errors(validator, broken), "the schema let a broken compose file through"


# --- Healthchecks and start order ---------------------------------------------------------------


def test_the_stack_has_every_component(compose):
    assert {"postgres", "redis", "airflow-init", "sandbox"} <= set(services(compose))
    commands = {service.get("command") for service in airflow_services(compose).values()
                if isinstance(service.get("command"), str)}
    assert {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"} <= commands
    assert services(compose)["airflow-init"]["user"] == "0:0"
    for name, service in airflow_services(compose).items():
        if name != "airflow-init":
            assert service["user"] == "${AIRFLOW_UID:-50000}:0", name


def test_every_long_running_service_has_a_healthcheck(compose):
    assert one_shot_services(compose) == {"airflow-init"}
    for name, service in services(compose).items():
        if name in one_shot_services(compose):
            assert "healthcheck" not in service and "restart" not in service, name
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert service.get("restart") == "always", name


def test_every_dependency_exists_and_can_become_what_is_waited_for(compose):
    for name, service in services(compose).items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services(compose), f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services(compose)[dependency], f"{name} waits on {dependency}'s health"


def test_every_airflow_service_waits_for_the_databases_and_airflow_init(compose):
    for name, service in airflow_services(compose).items():
        depends_on = service["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
        if name != "airflow-init":
            assert depends_on["airflow-init"] == {"condition": "service_completed_successfully"}, name


def test_the_workers_wait_for_a_healthy_api_server(compose):
    api_server, _ = service_running(compose, "api-server")
    _, worker = service_running(compose, "celery worker")
    assert worker["depends_on"][api_server] == {"condition": "service_healthy"}
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown of Celery


def test_the_airflow_healthchecks_are_the_official_ones(compose):
    _, api_server = service_running(compose, "api-server")
    assert "http://localhost:8080/api/v2/version" in healthcheck_text(api_server)
    _, scheduler = service_running(compose, "scheduler")
    assert "http://localhost:8974/health" in healthcheck_text(scheduler)
    assert scheduler["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    for command, job_type in (("dag-processor", "DagProcessorJob"), ("triggerer", "TriggererJob")):
        _, service = service_running(compose, command)
        assert service["healthcheck"]["test"][0] == "CMD-SHELL"
        assert f'airflow jobs check --job-type {job_type} --hostname "$${{HOSTNAME}}"' in healthcheck_text(service)
    _, worker = service_running(compose, "celery worker")
    assert 'inspect ping -d "celery@$${HOSTNAME}"' in healthcheck_text(worker)


# --- Configuration and secrets ------------------------------------------------------------------


def test_the_jwt_secret_fernet_key_and_passwords_must_be_set(compose):
    env = compose["x-airflow"]["environment"]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
        assert REQUIRED.fullmatch(env[key]), f"{key} must be ${{VAR:?message}}, not {env[key]!r}"
    assert REQUIRED.fullmatch(services(compose)["postgres"]["environment"]["POSTGRES_PASSWORD"])
    assert REQUIRED.fullmatch(services(compose)["postgres"]["environment"]["WAREHOUSE_PASSWORD"])
    assert REQUIRED.fullmatch(services(compose)["airflow-init"]["environment"]["_AIRFLOW_ADMIN_PASSWORD"])
    # Every Airflow service gets the same secrets (one JWT secret across the components).
    for name, service in airflow_services(compose).items():
        for key, value in env.items():
            assert service["environment"][key] == value, f"{name} overrides {key}"


def test_no_secret_has_a_silent_default(compose):
    for match in INTERPOLATION.finditer(interpolated_text(compose)):
        if SECRET_NAME.search(match["name"]):
            assert match["op"] == ":?", f"${{{match['name']}}} must be required: {match[0]}"


def test_env_example_lists_every_variable_and_leaves_the_secrets_to_fill_in(compose):
    text = interpolated_text(compose)
    required = {match["name"] for match in REQUIRED.finditer(text)}
    used = {match["name"] for match in INTERPOLATION.finditer(text)}
    assigned = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE))
    mentioned = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert required == {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "POSTGRES_PASSWORD",
                         "WAREHOUSE_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"}
    assert used <= mentioned, f"not in .env.example: {used - mentioned}"
    for name in required:
        assert assigned.get(name) == "", f"{name} must be in .env.example with an empty value"


def test_the_stack_refuses_to_start_without_its_secrets(compose):
    env = compose["x-airflow"]["environment"]
    with pytest.raises(KeyError, match="AIRFLOW_JWT_SECRET"):
        interpolate(env["AIRFLOW__API_AUTH__JWT_SECRET"], {"AIRFLOW_JWT_SECRET": ""})
    with pytest.raises(KeyError, match="AIRFLOW_FERNET_KEY"):
        interpolate(env["AIRFLOW__CORE__FERNET_KEY"], {})
    assert interpolate(env["AIRFLOW__CORE__FERNET_KEY"], {"AIRFLOW_FERNET_KEY": "k"}) == "k"


def test_execution_api_url_names_the_api_server_service_and_port(compose):
    api_server, service = service_running(compose, "api-server")
    url = urlsplit(compose["x-airflow"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    [published] = service["ports"]
    container_port = int(published.rsplit(":", 1)[1])
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", api_server, container_port, "/execution/")
    assert published.startswith("127.0.0.1:"), "the api-server is published on the host's loopback only"


def test_celery_runs_on_redis_with_results_in_postgres(compose):
    keys = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    env = {key: interpolate(compose["x-airflow"]["environment"][key], {"POSTGRES_PASSWORD": "pw"}) for key in keys}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
    assert (backend.scheme, backend.hostname, backend.password) == ("db+postgresql", "postgres", "pw")
    metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (metadata.hostname, metadata.path) == ("postgres", "/airflow")


def test_the_stack_recovers_like_the_local_one_and_queues_no_more_than_its_workers_run(compose):
    """The fault tests (tests/e2e/test_celery_faults.py) prove the local stack's recovery settings; the
    production file has the same ones, and a queued task is never one that only waits for a free slot."""
    env = compose["x-airflow"]["environment"]
    assert {key: env.get(key) for key in RECOVERY} == RECOVERY
    replicas = services(compose)["airflow-worker"]["deploy"]["replicas"]
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) == replicas * int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"])


def test_connections_point_at_services_of_the_stack(compose):
    env = compose["x-airflow"]["environment"]
    sandbox_argv = services(compose)["sandbox"]["command"]
    sandbox_port = int(sandbox_argv[sandbox_argv.index("--port") + 1])
    http_conns = {key: json.loads(value) for key, value in env.items()
                  if key.startswith("AIRFLOW_CONN_") and value.lstrip().startswith("{")}
    assert {"AIRFLOW_CONN_INSTAGRAM_API", "AIRFLOW_CONN_YOUTUBE_API", "AIRFLOW_CONN_TIKTOK_API",
            "AIRFLOW_CONN_ML_API", "AIRFLOW_CONN_VISION_API"} <= set(http_conns)
    # The run notes go to the api-server, as the admin airflow-init creates; every API to the sandbox.
    notes = urlsplit(http_conns.pop("AIRFLOW_CONN_AIRFLOW_API")["host"])
    execution = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (notes.hostname, notes.port) == (execution.hostname, execution.port)
    for key, conn in http_conns.items():
        host = urlsplit(conn["host"])
        assert (host.hostname, host.port) == ("sandbox", sandbox_port), key
    warehouse = urlsplit(interpolate(env["AIRFLOW_CONN_SOCIALSYNC_DB"], {"WAREHOUSE_PASSWORD": "pw"}))
    assert (warehouse.hostname, warehouse.username, warehouse.password, warehouse.path) == (
        "postgres", "socialsync", "pw", "/warehouse")
    init_scripts = mounts(services(compose)["postgres"])
    assert (ROOT / init_scripts["/docker-entrypoint-initdb.d/10-warehouse.sh"]).is_file()


# --- Mounts, image, sandbox, pools --------------------------------------------------------------


def test_dags_include_and_logs_are_mounted_and_no_plugins_folder(compose):
    for name, service in airflow_services(compose).items():
        for target, source in AIRFLOW_MOUNTS.items():
            assert mounts(service).get(target) == source, f"{name}: {source} is not mounted on {target}"
        # The plugin comes with the package (its airflow.plugins entry point), not from a folder.
        assert "/opt/airflow/plugins" not in mounts(service), name
    for source in ("./dags", "./include"):
        assert (ROOT / source).is_dir()
    assert not list((ROOT / "plugins").glob("*.py"))  # plugins/ only says where the plugin comes from


def test_the_image_installs_the_mounted_package_editable_with_its_extras(compose):
    dockerfile = DOCKERFILE.read_text()
    assert "plugins" not in re.findall(r"^COPY\b.*$", dockerfile, re.MULTILINE).__str__()
    assert re.search(r"^COPY\b.*\sdags\s+/opt/airflow/dags/?\s*$", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY\b.*\sinclude\s+/opt/socialsync/include/?\s*$", dockerfile, re.MULTILINE)
    # Editable from the directory whose include/ the compose file mounts: the mounted code is what runs.
    assert re.search(r'^RUN pip install .*-e "/opt/socialsync\[postgres,celery,sandbox\]"\s*$', dockerfile,
                     re.MULTILINE)
    images = {service.get("image") for service in services(compose).values() if service.get("build") == "."}
    assert images == {compose["x-airflow"]["image"]}
    assert services(compose)["sandbox"]["image"] == compose["x-airflow"]["image"]


def test_the_sandbox_listens_on_the_container_network(compose):
    sandbox = services(compose)["sandbox"]
    assert sandbox["entrypoint"] == ["python", "-m", "socialsync.sandbox"]
    argv = sandbox["command"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    port = argv[argv.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/_sandbox/stats" in healthcheck_text(sandbox)


def test_the_sandbox_cli_accepts_the_compose_command(compose, monkeypatch):
    """The real CLI parses the service's arguments and serves on the host they name."""
    from socialsync.sandbox import server

    served: dict[str, Any] = {}
    monkeypatch.setattr(server, "uvicorn", SimpleNamespace(run=lambda app, **kwargs: served.update(kwargs)))
    argv = services(compose)["sandbox"]["command"]
    try:
        server.main(list(argv))
    except SystemExit as exc:
        pytest.fail(f"python -m socialsync.sandbox rejects the compose command {shlex.join(argv)} (exit {exc.code})")
    assert (served["host"], served["port"]) == ("0.0.0.0", int(argv[argv.index("--port") + 1]))


def test_the_sandbox_answers_the_path_its_healthcheck_asks_for():
    import httpx

    from socialsync.sandbox.dataset import DatasetSpec
    from socialsync.sandbox.server import SandboxConfig, build_app

    async def get_stats() -> int:
        transport = httpx.ASGITransport(app=build_app(SandboxConfig(spec=DatasetSpec(profiles=2))))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return (await client.get("/_sandbox/stats")).status_code

    assert asyncio.run(get_stats()) == 200


def test_airflow_init_creates_the_pools_of_airflow_settings(compose):
    settings = yaml.safe_load(SETTINGS_FILE.read_text())
    expected = {pool["pool_name"]: pool["pool_slot"] for pool in settings["airflow"]["pools"]}
    created = {name: int(slots) for name, slots in re.findall(r"airflow pools set (\S+) (\d+)", init_script(compose))}
    assert created == expected


def test_airflow_init_migrates_and_checks_the_secrets_first(compose):
    script = init_script(compose)
    assert script.startswith("set -euo pipefail")
    for step in ("AIRFLOW__CORE__FERNET_KEY", "Fernet(", "airflow db migrate", "airflow users create", "pools set"):
        assert step in script, step
    assert script.index("Fernet(") < script.index("airflow db migrate") < script.index("pools set")


def test_airflow_init_script_is_valid_bash(compose):
    script = interpolate(init_script(compose), {})
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
