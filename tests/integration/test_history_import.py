"""Import of history: a directory of result files, each a run, with metadata from flags, sidecars,
perfhouse-runs.yaml and file names; k6 summaries kept beside their runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.demo_api import DemoAPI
from tests.conftest import need
from warehouse.errors import IngestError
from warehouse.ingest.history import RunMeta, meta_from_file_name, resolve_meta
from warehouse.read.records import RunRecord
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def cli(url: str, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(main, ["--warehouse", url, *args])
    return out.exit_code, out.output


def runs_by_name(url: str) -> dict[str, RunRecord]:
    wh = Warehouse.open(url)
    return {r.name: wh.run(r.run_id) for r in wh.runs()}


# -- metadata precedence, without a warehouse ---------------------------------------------------------


def test_file_name_pattern_gives_name_and_start() -> None:
    assert meta_from_file_name(Path("checkout_20240131-220501.jtl.gz")) == RunMeta(
        name="checkout", started_at="2024-01-31 22:05:01.000")
    assert meta_from_file_name(Path("results.jtl")) == RunMeta()


def test_flags_win_over_sidecar_over_directory_file_over_file_name(tmp_path: Path) -> None:
    (tmp_path / "perfhouse-runs.yaml").write_text("env: staging\nprofile: soak\nlabels: {team: shop, region: eu}\n")
    sub = tmp_path / "jan"
    sub.mkdir()
    (sub / "perfhouse-runs.yaml").write_text("profile: spike\n")
    path = sub / "checkout_20240131-220501.jtl"
    path.write_text("")
    (sub / "checkout_20240131-220501.meta.yaml").write_text("name: checkout-night\nlabels: {region: us}\n")
    meta = resolve_meta(path, RunMeta(labels={"team": "platform"}), tmp_path)
    assert meta == RunMeta(name="checkout-night", environment="staging", profile="spike",
                           labels={"team": "platform", "region": "us"}, started_at="2024-01-31 22:05:01.000")
    # the more specific sidecar (x.jtl.meta.yaml) is read first
    (sub / "checkout_20240131-220501.jtl.meta.yaml").write_text("environment: prod\n")
    assert resolve_meta(path, RunMeta(), tmp_path).environment == "prod"
    assert resolve_meta(path, RunMeta(environment="dev"), tmp_path).environment == "dev"


def test_an_unknown_sidecar_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "a.jtl"
    path.write_text("")
    (tmp_path / "a.meta.yaml").write_text("enviroment: prod\n")
    with pytest.raises(IngestError, match=r"a\.meta\.yaml: enviroment: unknown key; did you mean 'environment'"):
        resolve_meta(path, RunMeta(), tmp_path)


# -- a directory of history, on both backends --------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path, k6_output: Path, jtl_output: Path) -> Path:
    root = tmp_path / "history"
    (root / "2024" / "jan").mkdir(parents=True)
    (root / "perfhouse-runs.yaml").write_text("env: staging\nlabels:\n  team: shop\n")
    shutil.copy(k6_output, root / "2024" / "jan" / "browse_20240131-220501.json")
    shutil.copy(jtl_output, root / "2024" / "jan" / "nightly.jtl")
    (root / "2024" / "jan" / "nightly.jtl.meta.yaml").write_text(
        "name: nightly-jmeter\nstarted_at: 2024-01-30T01:00:00+01:00\nlabels: {build: '1234'}\n")
    (root / "README.txt").write_text("results of last winter\n")
    return root


def test_recursive_import_makes_one_run_per_file_with_its_metadata(history: Path, any_warehouse_url: str) -> None:
    code, output = cli(any_warehouse_url, "ingest", str(history), "--recursive", "--label", "source=archive")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("[1/3] ") and "browse_20240131-220501.json: run " in lines[0]
    assert lines[-2].startswith("[3/3] ") and "README.txt: skipped: not a results file perfhouse knows" in lines[-2]
    assert lines[-1].startswith("3 files: 2 ingested") and "1 skipped" in lines[-1]
    runs = runs_by_name(any_warehouse_url)
    assert set(runs) == {"browse", "nightly-jmeter"}
    k6, jm = runs["browse"], runs["nightly-jmeter"]
    assert (k6.tool, k6.environment, k6.started_at) == ("k6", "staging", "2024-01-31 22:05:01.000")
    assert k6.labels == {"team": "shop", "source": "archive"}
    assert (jm.tool, jm.environment, jm.started_at) == ("jmeter", "staging", "2024-01-30 00:00:00.000")
    assert jm.labels == {"team": "shop", "build": "1234", "source": "archive"}
    # again: nothing added
    code, output = cli(any_warehouse_url, "ingest", str(history), "-r", "--json")
    assert code == 0
    docs = [json.loads(line) for line in output.splitlines()]
    assert [d["status"] for d in docs] == ["duplicate", "duplicate", "skipped"]
    assert len(runs_by_name(any_warehouse_url)) == 2


def test_without_recursive_only_the_directorys_own_files(history: Path, tmp_path: Path) -> None:
    code, output = cli(f"chdb://{tmp_path / 'wh'}", "ingest", str(history), "--env", "prod")
    assert code == 7 and "1 files" not in output  # no results file in the directory itself: said, not silent
    assert output.count("skipped") == 1 and "run " not in output
    assert "nothing ingested" in output and "--recursive" in output


def test_a_file_with_rejected_lines_makes_the_import_exit_7(history: Path, tmp_path: Path) -> None:
    good = next((history / "2024" / "jan").glob("*.json")).read_bytes()
    (history / "cut.json").write_bytes(good[:-40])
    code, output = cli(f"chdb://{tmp_path / 'wh'}", "ingest", str(history), "--recursive")
    assert code == 7
    assert "cut.json: run " in output and "1 rejected lines" in output


def test_a_directory_file_with_bad_yaml_fails_that_file_and_names_the_line(history: Path, tmp_path: Path) -> None:
    (history / "2024" / "perfhouse-runs.yaml").write_text("env: [unclosed\n")
    code, output = cli(f"chdb://{tmp_path / 'wh'}", "ingest", str(history), "--recursive")
    assert code == 7
    assert "failed: " in output and "perfhouse-runs.yaml:2:1: not valid YAML" in output


# -- k6 summaries kept with the run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def k6_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real k6 run written as a perfhouse run directory: k6.json and k6-summary.json (--summary-export)."""
    directory = tmp_path_factory.mktemp("k6run")
    with DemoAPI() as api:
        script = directory / "probe.js"
        script.write_text(
            'import http from "k6/http";\n'
            # one VU: two VUs' requests can share a nanosecond and their tags, which k6 JSON cannot tell apart
            'export const options = { vus: 1, duration: "3s" };\n'
            f'export default function () {{ http.get("{api.url}/products?category=books"); '
            f'http.get("{api.url}/products/1"); }}\n',
            encoding="utf-8",
        )
        subprocess.run([need("k6"), "run", "--quiet", "--out", f"json={directory / 'k6.json'}", "--summary-export",
                        str(directory / "k6-summary.json"), str(script)], check=True, capture_output=True, timeout=120)
    script.unlink()
    return directory


def test_k6_summary_beside_the_results_is_kept_and_its_p95_is_the_warehouses(
    k6_run_dir: Path, any_warehouse_url: str
) -> None:
    code, output = cli(any_warehouse_url, "ingest", str(k6_run_dir), "--json")
    assert code == 0, output
    docs = [json.loads(line) for line in output.splitlines()]
    assert [d["status"] for d in docs] == ["ingested", "summary"]  # results first, then the summaries
    run_id = docs[0]["run_id"]
    assert docs[1]["run_id"] == run_id
    wh = Warehouse.open(any_warehouse_url)
    summary = wh.tool_summary(run_id)
    assert summary is not None
    k6 = summary["metrics"]["http_req_duration"]
    totals = wh.totals(run_id)
    assert totals["count"] == summary["metrics"]["http_reqs"]["count"] > 20
    assert totals["p95_ms"] == pytest.approx(k6["p(95)"], abs=0.01)
    assert totals["p90_ms"] == pytest.approx(k6["p(90)"], abs=0.01)
    # again: nothing added, the summary included
    code, output = cli(any_warehouse_url, "ingest", str(k6_run_dir))
    assert code == 0 and "already ingested" in output and "summary already kept" in output


def test_summary_attached_to_an_existing_run_with_run_flag(k6_run_dir: Path, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    results = tmp_path / "results.json"
    shutil.copy(k6_run_dir / "k6.json", results)  # no summary beside it
    code, output = cli(url, "ingest", str(results), "--json")
    run_id = json.loads(output)["run_id"]
    assert Warehouse.open(url).tool_summary(run_id) is None
    code, output = cli(url, "ingest", str(k6_run_dir / "k6-summary.json"), "--run", run_id[:12])
    assert code == 0, output
    assert f"kept with run {run_id}" in output
    stored = Warehouse.open(url).tool_summary(run_id)
    assert stored == json.loads((k6_run_dir / "k6-summary.json").read_text())
    code, output = cli(url, "ingest", str(k6_run_dir / "k6-summary.json"))
    assert code == 1 and "attach it to its run with --run RUN_ID" in output


def test_a_perfhouse_run_ingest_keeps_the_summary_beside_its_results(k6_run_dir: Path, tmp_path: Path) -> None:
    from warehouse.store import RunInfo, new_run_id

    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    info = RunInfo(new_run_id("k6"), "k6")
    wh.save_run(info)
    result = wh.ingest(k6_run_dir / "k6.json", info)
    assert any("k6-summary.json" in n for n in result.notes)
    assert set(wh.tool_summaries(info.run_id)) == {"k6-summary.json"}
