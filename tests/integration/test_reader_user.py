"""The compose stack's read-only ClickHouse user, as a ClickHouse engine reads its users.d file: granted
SELECT on the perfhouse database and nothing else, a password from the server's environment, localhost
only, and a profile whose caps a query cannot raise.

No ClickHouse server image can be had here and chdb cannot log in as another user, so the file is loaded
into chdb's access control (a real ClickHouse parser) and the grants are read back with SHOW GRANTS; that
the page and Grafana connect as this user is checked in tests/unit/test_stack.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

USERS_XML = ROOT / "deploy" / "clickhouse" / "users.d" / "perfhouse-reader.xml"


def test_the_reader_may_select_from_perfhouse_and_nothing_else(tmp_path: Path) -> None:
    env = {**os.environ, "PERFHOUSE_READER_PASSWORD": "a secret"}
    shown = subprocess.run([sys.executable, "-m", "tests.support.users_config", str(tmp_path), str(USERS_XML)],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr[-2000:]
    config = json.loads(shown.stdout.splitlines()[-1])
    reader = config["users"]["perfhouse_reader"]
    assert reader["grants"] == ["GRANT SELECT ON perfhouse.* TO perfhouse_reader"]
    assert reader["auth_type"] == ["plaintext_password"]
    assert reader["host_names"] == ["localhost"] and reader["host_ip"] == []
    profile = config["profiles"]["perfhouse_reader"]
    assert profile["readonly"]["value"] == "2"  # read-only; settings changeable within the constraints
    assert profile["max_execution_time"]["max"] == "60"
    assert profile["max_memory_usage"]["max"] == str(2**31)
    assert profile["max_result_rows"]["max"] == "1000000"
    assert set(config["users"]) == {"perfhouse_reader"}
