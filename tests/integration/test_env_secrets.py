"""${env:NAME}: both tools send the environment's values, which no script or file keeps."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.errors import SpecError
from orchestrator.generators import GenerationOptions
from orchestrator.secrets import ENV_FILE, require_env, secret_file
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import ROOT, need

pytestmark = pytest.mark.integration
SPEC = ROOT / "tests" / "golden" / "env" / "spec.yaml"
# Header values travel as ASCII in both tools (JMeter would send other characters as ISO-8859-1).
VALUES = {"PERFHOUSE_TEST_TOKEN": "t0k=n:\"q\" ${x} \\ 'it'", "PERFHOUSE_TEST_TENANT": " acme, inc #1"}


def test_missing_environment_variables_are_named() -> None:
    spec = load_spec(SPEC)
    assert spec.env_names() == ["PERFHOUSE_TEST_TENANT", "PERFHOUSE_TEST_TOKEN"]
    with pytest.raises(SpecError, match="PERFHOUSE_TEST_TENANT, PERFHOUSE_TEST_TOKEN are not set"):
        require_env(spec.env_names(), {}, spec.file)


@pytest.mark.parametrize(("tool", "in_memory"), [("k6", False), ("jmeter", False), ("jmeter", True), ("locust", False)])
def test_environment_values_reach_the_server_and_no_file(tool: str, in_memory: bool, tmp_path: Path) -> None:
    binary = need(tool)
    spec = load_spec(SPEC)
    values = require_env(spec.env_names(), VALUES, spec.file)
    with DemoAPI(record=True) as api:
        options = TOOLS[tool].for_version(GenerationOptions("golden", {"api": api.url}), TOOLS[tool].version(binary))
        script = generate(spec, tool, options)
        path = tmp_path / script.filename
        path.write_text(script.content)
        argv = TOOLS[tool].invocation(binary, path, tmp_path).argv
        with secret_file(tmp_path, TOOLS[tool].secret_file(values), in_memory=in_memory) as props:
            if props is not None:
                argv = [*argv, *TOOLS[tool].secret_args(props.path)]
                # in memory: the tool reads /dev/fd/N of a descriptor it inherits; no file has the values
                assert props.on_disk is not in_memory
                assert (tmp_path / ENV_FILE).exists() is not in_memory
            proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, **values}, pass_fds=(props.fd,) if props and props.fd else ())
        assert TOOLS[tool].completed(proc.returncode), proc.stdout[-2000:]
        (seen,) = api.requests
    token, tenant = VALUES["PERFHOUSE_TEST_TOKEN"], VALUES["PERFHOUSE_TEST_TENANT"]
    assert seen.query == [("tenant", tenant)]
    assert json.loads(seen.body) == {"user": "demo", "token": token}
    assert seen.headers["x-tenant"] == tenant.strip()  # HTTP trims a header value's leading space
    assert seen.headers["authorization"] == f"Bearer {token}"
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert b"t0k=n" not in file.read_bytes(), file
