"""docker-compose.yml as tests read it: the file, Compose's variable interpolation, and one service turned into
the `docker run` arguments Compose would give its container (for the keys the perfhouse services use)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = ROOT / "docker-compose.yml"
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")
# What a service may say for `run_arguments` to run it as Compose would; anything else is refused, so a new
# key in the compose file is noticed rather than silently dropped. `build` and `image` name the image (the
# caller builds it); `depends_on` and `restart` are the caller's to honour (it starts what a service needs
# first, and a container that dies must fail a test rather than restart).
RUN_KEYS = frozenset({"image", "build", "network_mode", "command", "environment", "volumes", "depends_on", "restart"})


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}` / `${VAR:-default}` with `env` (defaults when a variable is not set)."""
    env = env or {}
    return _VARIABLE.sub(lambda m: env.get(m[1]) or (m[2] or ""), text)


def run_arguments(service: dict[str, Any], project_dir: Path) -> list[str]:
    """`docker run` options for the service's network, environment and volumes (relative bind mounts
    resolved against `project_dir`, as Compose resolves them against the compose file's directory)."""
    unknown = set(service) - RUN_KEYS
    assert not unknown, f"the compose service has keys the test does not know how to run: {sorted(unknown)}"
    argv = ["--network", service["network_mode"]] if "network_mode" in service else []
    environment = service.get("environment", {})
    pairs = environment.items() if isinstance(environment, dict) else (e.split("=", 1) for e in environment)
    for name, value in pairs:
        argv += ["--env", f"{name}={interpolate(str(value))}"]
    for volume in service.get("volumes", []):
        source, rest = volume.split(":", 1)
        if source.startswith("./"):
            source = str(project_dir / source[2:])
        argv += ["--volume", f"{source}:{rest}"]
    return argv


def with_option(command: list[str], option: str, value: str) -> list[str]:
    """The command with the value of `option` (which it must have) replaced."""
    assert option in command, f"{option} is not in {command}"
    at = command.index(option) + 1
    return [*command[:at], value, *command[at + 1:]]
