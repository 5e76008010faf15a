"""A suite's entries run through the library with every option of `perfhouse run`, parallel ones in processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.errors import ExitStatus
from orchestrator.run import RunSettings
from orchestrator.suite import SuiteRun, load_suite, run_suite
from tests.conftest import ROOT, need
from tests.integration.test_runner_scrape import exposition  # noqa: F401 (a fixture)
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def test_parallel_entries_honour_scrape_timeout_and_environment(tmp_path: Path, exposition: str) -> None:  # noqa: F811
    need("k6")
    head = (ROOT / "examples" / "shop.yaml").read_text().partition("profiles:\n")[0]
    (tmp_path / "shop.yaml").write_text(head + "profiles:\n  long: {executor: constant_vus, vus: 1, duration: 60s}\n")
    url = f"chdb://{tmp_path / 'wh'}"
    with DemoAPI() as api:
        (tmp_path / "suite.yaml").write_text(
            "suite: nightly\nmode: parallel\nruns:\n"
            f"  - {{spec: shop.yaml, profile: long, services: {{api: '{api.url}'}}}}\n"
            f"  - {{spec: shop.yaml, profile: long, services: {{api: '{api.url}'}}}}\n"
        )
        settings = RunSettings(scrape=(exposition,), scrape_interval_s=0.5)
        shared = SuiteRun(url, settings, tmp_path / "runs", timeout_s=4.0, environment="nightly")
        results = run_suite(load_suite(tmp_path / "suite.yaml"), shared, echo=lambda _: None)
    assert [r.exit_status for r in results] == [ExitStatus.ABORTED, ExitStatus.ABORTED], [r.error for r in results]
    for result in results:
        (run,) = result.runs
        assert run.status == "aborted" and "stopped by the 4s timeout" in run.notes
        assert run.infra_samples > 0 and sum(i.rows for i in run.ingested) > 0
    wh = Warehouse.open(url)
    assert {(r.environment, r.status) for r in wh.runs()} == {("nightly", "aborted")}
