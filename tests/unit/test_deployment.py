"""The deployment files name only real commands and settings (Docker does not run here, so they
are checked by reading them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from pydantic import BaseModel

from config.settings import ENV_PREFIX, Settings
from dunning.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
ENV_LINE = re.compile(r"^(#\s*)?(DUNNING_[A-Z0-9_]+)=(.*)$")


def setting_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every variable that sets a leaf setting: ``DUNNING_X`` and ``DUNNING_GROUP__X``."""
    names = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= setting_names(ann, f"{prefix}{name.upper()}__")
        else:
            names.add(prefix + name.upper())
    return names


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def commands(service: dict[str, Any]) -> list[list[str]]:
    found = []
    if "command" in service:
        found.append([str(a) for a in service["command"]])
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list) and test and test[0] == "CMD":
        found.append([str(a) for a in test[1:]])
    return found


def resolve(argv: list[str]) -> None:
    """Fail unless ``argv`` (after ``dunning``) names a command and only its options."""
    command: Any = typer.main.get_command(app)
    args = list(argv)
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        assert name in command.commands, f"dunning has no command {name!r} ({argv})"
        command = command.commands[name]
    assert not hasattr(command, "commands"), f"{argv} names a group, not a command"
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for arg in args:
        if arg.startswith("-"):
            assert arg in known, f"dunning {' '.join(argv)}: no option {arg} (has {known})"


def test_every_compose_command_is_a_real_dunning_command() -> None:
    checked = 0
    for name, service in compose()["services"].items():
        ours = "build" in service
        for argv in commands(service):
            if argv[0] == "dunning":
                resolve(argv[1:])
                checked += 1
            else:
                assert not (ours and "command" in service and argv == service["command"]), name
    assert checked >= 5  # migrate, worker, scheduler (and its health check), web


def test_resolve_refuses_a_made_up_command_or_option() -> None:
    with pytest.raises(AssertionError, match="no command"):
        resolve(["wrokers"])
    with pytest.raises(AssertionError, match="no option --nope"):
        resolve(["web", "--nope", "1"])


def test_every_variable_in_compose_is_a_setting() -> None:
    real = setting_names()
    text = COMPOSE.read_text()
    used = set(re.findall(r"\b(DUNNING_[A-Z0-9_]+)", text))
    for service in compose()["services"].values():
        environment = service.get("environment") or {}
        used |= {k for k in environment if k.startswith(ENV_PREFIX)}
    assert used, "no settings found"
    assert used <= real, f"not settings: {sorted(used - real)}"


def test_env_example_documents_every_setting_with_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    named = {}
    for i, line in enumerate(lines):
        m = ENV_LINE.match(line)
        if m:
            named[m.group(2)] = i
    real = setting_names()
    assert set(named) <= real, f"not settings: {sorted(set(named) - real)}"
    assert real <= set(named), f"undocumented settings: {sorted(real - set(named))}"
    for name, i in named.items():
        j = i - 1
        while j >= 0 and ENV_LINE.match(lines[j]):
            j -= 1  # a group of related variables shares the comment above it
        assert j >= 0, name
        assert lines[j].startswith("#"), name
        assert lines[j].strip("# "), name


def test_env_example_is_a_valid_configuration(tmp_path: Path) -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    assert settings.link_secret.get_secret_value() == ""  # to be filled in, nothing else set
    assert settings.broker_url == "stub://"


def test_compose_runs_the_production_shape() -> None:
    services = compose()["services"]
    assert {"redis", "postgres", "mailpit", "migrate", "worker", "scheduler", "web"} <= set(
        services
    )
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert services["migrate"]["command"] == ["dunning", "db", "upgrade"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["scheduler"]["deploy"]["replicas"] == 2
    for name in ("worker", "scheduler", "web"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        env = services[name]["environment"]
        assert env["DUNNING_ENV"] == "production"
        assert env["DUNNING_BROKER_URL"].startswith("redis://")
        assert env["DUNNING_DATABASE_URL"].startswith("postgresql://")
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, f"{name} has no health check"
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]  # the TLS proxy's upstream


def test_compose_publishes_nothing_beyond_this_host_and_does_not_default_to_the_sandbox() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    env = services["web"]["environment"]
    assert env["DUNNING_GATEWAY"] == "${DUNNING_GATEWAY:-stripe}"
    assert env["DUNNING_PUBLIC_BASE_URL"].startswith("${DUNNING_PUBLIC_BASE_URL:?")
    text = COMPOSE.read_text()
    assert "TLS" in text
    assert "reverse proxy" in text


def test_dockerfile_installs_the_package_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert "pip install --constraint constraints.txt ." in text
    assert re.search(r"^COPY .*\bconstraints\.txt\b", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


def test_the_rabbitmq_variant_overrides_every_dunning_service_onto_amqp() -> None:
    base = compose()["services"]
    variant = yaml.safe_load((ROOT / "docker-compose.rabbitmq.yml").read_text())
    services = variant["services"]
    ours = {name for name, service in base.items() if "build" in service}
    assert ours == {"migrate", "worker", "scheduler", "web"}
    assert ours < set(services), "a dunning service left on the Redis broker"
    for name in ours:
        url = services[name]["environment"]["DUNNING_BROKER_URL"]
        assert url.startswith("amqp://"), name
        assert "@rabbitmq:5672/" in url, name
    for name in ours - {"migrate"}:
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name
    assert "rabbitmq-data" in variant["volumes"]
    used = set(
        re.findall(r"\b(DUNNING_[A-Z0-9_]+)", (ROOT / "docker-compose.rabbitmq.yml").read_text())
    )
    assert used <= setting_names()
    assert "docker-compose.rabbitmq.yml" in (ROOT / "docs/operations.md").read_text()


CONSTRAINTS = ROOT / "constraints.txt"
SETUP = ROOT / "scripts" / "setup"


def pins() -> dict[str, Version]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: not an exact pin: {line!r}"
            found[canonicalize_name(name)] = Version(version)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def test_every_dependency_has_an_upper_bound_and_an_exact_pin_it_allows() -> None:
    pinned = pins()
    for req in declared():
        assert any(spec.operator == "<" for spec in req.specifier), f"{req}: no upper bound"
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not pinned in constraints.txt"
        assert pinned[name] in req.specifier, f"constraints.txt pins {name} {pinned[name]}: {req}"
    assert "pip" in pinned


def test_setup_and_the_image_install_from_the_constraints_and_name_no_registry() -> None:
    setup = SETUP.read_text()
    installs = [line for line in setup.splitlines() if line.startswith("install ")]
    assert len(installs) == 2
    assert all("--constraint constraints.txt" in line for line in installs)
    for text in (setup, (ROOT / "scripts" / "lock").read_text(), DOCKERFILE.read_text()):
        assert not re.search(r"https?://|--index-url|--extra-index-url|--find-links", text)
