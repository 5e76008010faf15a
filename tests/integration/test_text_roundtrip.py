"""Any text reaches either backend exactly: run name, environment, profile, labels, step names and file paths
round-trip through ingestion and the read API unchanged (backslashes, quotes, NUL, line breaks, tabs, a lone
`\\N`, characters outside the BMP), and a run reference that is no run id gets the warehouse's own message."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import BACKENDS, make_warehouse_url
from warehouse.errors import WarehouseError
from warehouse.ingest.history import RunMeta
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

# The characters that an escaping bug mangles (and globs that ClickHouse's file() expands), mixed into any text.
HOSTILE = ["\\", "'", '"', "`", "\0", "\n", "\r", "\t", "\\N", "\\n", "\\t", "\\0", "\\'", "{", "}", "😀", "\U0010fffd",
           "é", "\x85", "\u2028", "%", "&", "=", ";", ",", "*", "?", "{a,b}", "{1..3}", "[x]"]
text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=4)), max_size=8).map("".join)
# A file name: no "/" and no NUL (the file system refuses them), not "." or "..", at most 200 bytes.
file_name = text.map(lambda t: t.replace("/", "\\").replace("\0", "\\0")[:40]).filter(
    lambda t: t not in ("", ".", "..") and len(t.encode()) < 200)

_serial = itertools.count()


def jtl(step: str, serial: int) -> bytes:
    """A JMeter 5.x JTL with a header and one sample labelled `step` (CSV-quoted); `serial` makes each file
    distinct content, so no example is a re-ingest of another."""
    quoted = '"' + step.replace('"', '""') + '"'
    return (
        "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,"
        "sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect\n"
        f"{1700000000000 + serial},12,{quoted},200,OK,Users 1-1,text,true,,100,10,1,1,http://x/,5,0,1\n"
    ).encode()


@pytest.fixture(params=BACKENDS)
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    return Warehouse.open(make_warehouse_url(request.param, tmp_path, request))


@settings(max_examples=40, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text, env=text, profile=text, key=text.filter(bool), value=text, notes=text)
def test_run_text_round_trips(wh: Warehouse, name: str, env: str, profile: str, key: str, value: str,
                              notes: str) -> None:
    run_id = f"rt-{next(_serial)}"
    wh.save_run(RunInfo(run_id, "k6", status="completed", name=name, environment=env, profile=profile,
                        labels={key: value, "plain": key}, notes=notes, spec_name=name, branch=value))
    stored = wh.run(run_id)
    assert (stored.name, stored.environment, stored.profile, stored.notes) == (name, env, profile, notes)
    assert (stored.spec_name, stored.branch) == (name, value)
    assert stored.labels == {key: value, "plain": key}
    assert wh.resolve(run_id) == run_id


@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text.filter(bool), env=text, profile=text, key=text.filter(bool), value=text, step=text.filter(bool),
       folder=file_name)
def test_ingested_text_round_trips(wh: Warehouse, tmp_path_factory: pytest.TempPathFactory, name: str, env: str,
                                   profile: str, key: str, value: str, step: str, folder: str) -> None:
    serial = next(_serial)
    path = tmp_path_factory.mktemp("rt") / folder / f"{folder}.jtl"
    path.parent.mkdir()
    path.write_bytes(jtl(step, serial))
    result = wh.ingest(path, meta=RunMeta(name=name, environment=env, profile=profile, labels={key: value}))
    assert not result.duplicate and (result.rows, result.rejected) == (1, 0)
    stored = wh.run(result.run_id)
    assert (stored.name, stored.environment, stored.profile) == (name, env, profile)
    assert stored.labels == {key: value}
    assert [s.step for s in wh.step_stats(result.run_id)] == [step]
    files = wh.backend.query("SELECT path FROM ingested_files FINAL WHERE run_id = {r:String}",
                             {"r": result.run_id})
    assert [f["path"] for f in files] == [str(path)]
    assert wh.ingest(path).duplicate


@pytest.mark.parametrize("ref", ["\\", "\\N", "it's", "a\nb", "\0", "😀"])
def test_a_reference_that_is_no_run_is_said_so(wh: Warehouse, ref: str) -> None:
    with pytest.raises(WarehouseError, match=r"no run (.|\n)* in the warehouse"):
        wh.resolve(ref)


def test_cli_flags_reach_the_warehouse_exactly(tmp_path: Path) -> None:
    """The shell's text: a Windows path with \\n, \\t and \\r in it, a lone \\N, a trailing backslash."""
    url = f"chdb://{tmp_path / 'wh'}"
    path = tmp_path / "C:\\new\\table\\results"
    path.mkdir()
    results = path / "r.jtl"
    results.write_bytes(jtl("a\\b", 1))
    name = "C:\\new\\table\\results\\"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--warehouse", url, "ingest", str(results), "--run-name", name,
         "--env", "\\N", "--profile", "\\", "--label", "k\\t=v\\n", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    wh = Warehouse.open(url)
    stored = wh.runs()
    assert [(r.name, r.environment, r.profile) for r in stored] == [(name, "\\N", "\\")]
    assert wh.run(stored[0].run_id).labels == {"k\\t": "v\\n"}
    report = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "report", "\\"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode != 0 and "Traceback" not in report.stderr
    assert "no run" in report.stderr and "DB::Exception" not in report.stderr
