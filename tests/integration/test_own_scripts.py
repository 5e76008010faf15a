"""A team's own scripts through `perfhouse run`, unchanged: a hand-written k6 script (groups, name tags, checks,
thresholds, CSV data), a JMeter 2.13 plan (HTTP Request Defaults from ${__P(...)} properties, header managers, a CSV
Data Set beside it, a Transaction Controller, a regex extractor) and a locustfile, against a recording server on
127.0.0.1, locally and in containers (images perfhouse-test/*). The warehouse holds one row per request the server
saw, under the scripts' own names; the k6 thresholds are the run's verdicts; -J/-e values reach the tools and
nowhere else; `run a.js b.jmx` is one group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import need, unavailable
from tests.support.localhttp import serving
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parent / "byo"
DOCKER_SETUP = "../shared/tools/start-dockerd, ../shared/tools/build-test-images, scripts/build-locust-test-image"
IMAGES = {"k6": "perfhouse-test/k6:local", "jmeter": "perfhouse-test/jmeter:local",
          "locust": "perfhouse-test/locust:local"}
SECRET = "s3cr3t-team-value"  # given with -J: the server must see it, no file and no warehouse row may hold it
TOKEN = "s3cr3t-token-value"  # given with -e: the same

# The step each tool's results must name each request by, as the server saw it (method, path)
K6_STEPS = {("GET", "/products"): "list products", ("GET", "/products/7"): "product",
            ("POST", "/cart"): "add to cart"}  # /health has no name tag: its URL names it
JMETER_STEPS = {("GET", "/products"): "list products", ("POST", "/login"): "login", ("POST", "/cart"): "add to cart"}
LOCUST_STEPS = {("GET", "/products"): "list products", ("GET", "/products/7"): "product",
                ("POST", "/cart"): "add to cart"}
AGENTS = {"k6": "k6/", "jmeter": "Apache-HttpClient", "locust": "python-requests"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, tool: str) -> list[Seen]:
        return [s for s in self.seen if AGENTS[tool] in s.headers.get("User-Agent", "")]


@pytest.fixture
def shop() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with recorder.lock:
                recorder.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            code, out = 200, b'{"ok": true}'
            if self.path == "/login":
                out = b'{"token": "tok-' + body.split(b"=", 1)[-1] + b'"}'
            elif self.path == "/cart":
                code = 201
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = answer

    with serving(Handler) as url:
        yield url, recorder


def perfhouse(warehouse: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def script_args(url: str, *scripts: str, docker: bool = False) -> list[str]:
    """The scripts' paths and what they need: -e for k6 and Locust, -J for a plan (never a flag no script takes)."""
    port = url.rsplit(":", 1)[1]
    args = [str(SCRIPTS / s) for s in scripts]
    if "shop.js" in scripts:
        args += ["-e", f"BASE_URL={url}", "-e", f"API_TOKEN={TOKEN}"]
    if "shop.jmx" in scripts:
        args += [f"-Jport={port}", f"-Jteam={SECRET}"]
    if "locustfile.py" in scripts:
        args += ["-e", f"LOCUST_HOST={url}", "-e", "LOCUST_USERS=2", "-e", "LOCUST_SPAWN_RATE=20",
                 "-e", "LOCUST_RUN_TIME=2s", "-e", "LOCUST_STOP_TIMEOUT=10"]  # users end their task: no request cut
    args += ["--progress-interval", "0", "--runs-dir", "runs"]
    if docker:
        args += ["--runner", "docker", *(a for tool, image in IMAGES.items() for a in (f"--{tool}-image", image))]
    return args


def rows_by_step(warehouse: Warehouse, run_id: str) -> Counter[tuple[str, str]]:
    rows = warehouse.backend.query(
        "SELECT journey, step, count() AS n FROM requests WHERE run_id = {run:String} GROUP BY journey, step",
        {"run": run_id})
    return Counter({(r["journey"], r["step"]): int(r["n"]) for r in rows})


def expected_rows(recorder: Recorder, tool: str, journey_of: dict[str, str], steps: dict[tuple[str, str], str],
                  url: str) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for s in recorder.of(tool):
        step = steps.get((s.method, s.path), f"{url}{s.path}")
        out[(journey_of.get(step, journey_of.get("", "")), step)] += 1
    return out


def check_runs(tmp_path: Path, warehouse_url: str, url: str, recorder: Recorder, outcomes: list[dict]) -> None:
    """Every run holds one row per request its tool sent, under the script's names; the secrets are nowhere."""
    warehouse = Warehouse.open(warehouse_url)
    by_tool = {o["tool"]: o for o in outcomes}
    names = {"k6": ({"": "default"}, K6_STEPS), "jmeter": ({"": "shoppers"}, JMETER_STEPS),
             "locust": ({"": ""}, LOCUST_STEPS)}
    for tool, outcome in by_tool.items():
        journey_of, steps = names[tool]
        want = expected_rows(recorder, tool, journey_of, steps, url)
        assert want and rows_by_step(warehouse, outcome["run_id"]) == want, tool
        assert outcome["status"] == "completed" and outcome["rejected"] == 0
    if "jmeter" in by_tool:  # the plan's properties, CSV data, header managers and extracted token reached JMeter
        sent = recorder.of("jmeter")
        assert all(s.headers.get("X-Team") == SECRET for s in sent)
        logins = [s.body for s in sent if s.path == "/login"]
        assert sorted(set(logins)) == [b"user=alice", b"user=bob"]
        carts = [s for s in sent if s.path == "/cart"]
        assert carts and all(s.headers["Authorization"].startswith("Bearer tok-") for s in carts)
        # the Transaction Controller's own sample is no request
        assert "checkout" not in {step for _, step in rows_by_step(warehouse, by_tool["jmeter"]["run_id"])}
    if "k6" in by_tool:
        assert all(s.headers.get("X-Token") == TOKEN for s in recorder.of("k6"))
        assert {s.body for s in recorder.of("k6") if s.path == "/cart"} == {b'{"user":"alice"}', b'{"user":"bob"}'}
    for path in tmp_path.rglob("*"):  # the run directories and the warehouse's files
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and TOKEN.encode() not in data, path
    stored = json.dumps(warehouse.backend.query("SELECT * FROM runs"), default=str)
    assert SECRET not in stored and TOKEN not in stored


def k6_verdicts(outcome: dict) -> dict[str, bool]:
    return {v["slo"]: v["passed"] for v in outcome["slos"]}


def test_own_scripts_run_unchanged_and_land_under_their_own_names(shop: tuple[str, Recorder], tmp_path: Path) -> None:
    need("k6")
    need("jmeter")
    need("locust")
    url, recorder = shop
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    proc = perfhouse(warehouse, tmp_path, "run", *script_args(url, "shop.js", "shop.jmx"), "--gate", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = json.loads(proc.stdout)
    assert [o["tool"] for o in outcomes] == ["k6", "jmeter"]
    k6 = outcomes[0]
    assert k6_verdicts(k6) == {
        "k6 threshold checks rate>0.9": True,
        "k6 threshold http_req_duration{name:product} p(95)<5000": True,
        "k6 threshold http_req_failed rate<0.5": True,
        "list products p99 < 5000 ms": True,  # from shop.slo.yaml beside the script
    }
    product = next(v for v in k6["slos"] if "name:product" in v["slo"])
    assert product["metric"] == "p95" and product["observed"] is not None  # the warehouse's value beside k6's
    locust = perfhouse(warehouse, tmp_path, "run", *script_args(url, "locustfile.py"), "--slo", "error_rate<1%",
                       "--json")
    assert locust.returncode == 0, locust.stdout + locust.stderr
    outcomes += json.loads(locust.stdout)
    check_runs(tmp_path, warehouse, url, recorder, outcomes)

    runs = json.loads(perfhouse(warehouse, tmp_path, "runs", "--json").stdout)
    assert len({r["group_id"] for r in runs if r["tool"] in ("k6", "jmeter")}) == 1
    # the group compares k6 against JMeter, step by step
    compared = perfhouse(warehouse, tmp_path, "compare", "--group", "latest", "--json")
    (result,) = json.loads(compared.stdout)  # one comparison per tool beside k6
    assert (result["a"]["tool"], result["b"]["tool"], result["baseline"]) == ("k6", "jmeter", "group")
    assert {s["step"] for s in result["steps"]} >= {"list products", "add to cart"}

    # A failing threshold fails the run (k6 exits 99: the load ran), and run exits 3; the fingerprint holds
    strict = perfhouse(warehouse, tmp_path, "run", *script_args(url, "shop.js"), "-e", "STRICT=1", "--json")
    assert strict.returncode == 3, strict.stdout + strict.stderr
    failed = json.loads(strict.stdout)[0]
    assert failed["status"] == "completed" and failed["verdict"] == "FAILED" and failed["exit_code"] == 99
    assert k6_verdicts(failed)["k6 threshold http_req_duration{name:product} p(95)<0.001"] is False
    fingerprints = {r["run_id"]: r["fingerprint"] for r in json.loads(
        perfhouse(warehouse, tmp_path, "runs", "--json").stdout)}
    assert fingerprints[failed["run_id"]] == fingerprints[k6["run_id"]]


@pytest.fixture(scope="module")
def images() -> None:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        unavailable(f"the Docker engine is not reachable ({exc})", DOCKER_SETUP)
    for image in IMAGES.values():
        try:
            client.images.get(image)
        except Exception:
            unavailable(f"test image {image} is missing", DOCKER_SETUP)


def test_own_scripts_run_in_containers_with_their_data_files(images: None, shop: tuple[str, Recorder],
                                                             tmp_path: Path) -> None:
    url, recorder = shop
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    proc = perfhouse(warehouse, tmp_path, "run", *script_args(url, "shop.js", "shop.jmx", "locustfile.py",
                                                              docker=True), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = json.loads(proc.stdout)
    assert [o["tool"] for o in outcomes] == ["k6", "jmeter", "locust"]
    assert all(v["passed"] for v in outcomes[0]["slos"]) and len(outcomes[0]["slos"]) == 4
    check_runs(tmp_path, warehouse, url, recorder, outcomes)


def test_a_k6_script_and_a_plan_split_over_generators_into_one_run(shop: tuple[str, Recorder], tmp_path: Path) -> None:
    need("k6")
    url, recorder = shop
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    proc = perfhouse(warehouse, tmp_path, "run", *script_args(url, "shop.js"), "--generators", "2", "--live",
                     "--live-interval", "0.5", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcome = json.loads(proc.stdout)[0]
    assert len(recorder.of("k6")) == 24  # 6 iterations of 4 requests, shared by the two parts
    check_runs(tmp_path, warehouse, url, recorder, [outcome])
    generators = Warehouse.open(warehouse).backend.query(
        "SELECT DISTINCT generator FROM requests WHERE run_id = {run:String} ORDER BY generator",
        {"run": outcome["run_id"]})
    assert [g["generator"] for g in generators] == ["g1", "g2"]
    # a plan's thread groups are split: each part runs its share of the threads (here 1 of 2)
    need("jmeter")
    plan = perfhouse(warehouse, tmp_path, "run", *script_args(url, "shop.jmx"), "--generators", "2", "--json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    split = json.loads(plan.stdout)[0]
    assert len(recorder.of("jmeter")) == 18  # 2 threads, 3 loops, 3 samplers: as one JMeter sends
    check_runs(tmp_path, warehouse, url, recorder, [split])
    generators = Warehouse.open(warehouse).backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {run:String} GROUP BY generator ORDER BY generator",
        {"run": split["run_id"]})
    assert [(g["generator"], int(g["n"])) for g in generators] == [("g1", 9), ("g2", 9)]
    refused = perfhouse(warehouse, tmp_path, "run", *script_args(url, "locustfile.py"), "--generators", "2")
    assert refused.returncode == 2 and "locust cannot split" in refused.stderr


def start_long_locust(url: str, tmp_path: Path, warehouse: str) -> subprocess.Popen[str]:
    args = [a if not a.startswith("LOCUST_RUN_TIME=") else "LOCUST_RUN_TIME=120s"
            for a in script_args(url, "locustfile.py")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, "run", *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_requests(tmp_path: Path, before: Collection[Path] = (), seconds: float = 60) -> None:
    """Until a run not among `before` has written a request."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in (tmp_path / "runs").glob("*/locust.jsonl") if p.parent not in before):
            return
        time.sleep(0.1)
    raise AssertionError("the locustfile never wrote a request")


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


def test_a_script_run_stops_on_ctrl_c_keeps_its_requests_and_dies_with_perfhouse(
        shop: tuple[str, Recorder], tmp_path: Path) -> None:
    need("locust")
    url, _ = shop
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    proc = start_long_locust(url, tmp_path, warehouse)
    wait_for_requests(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    store = Warehouse.open(warehouse)
    (run,) = store.runs(limit=5)
    assert run.status == "aborted" and sum(rows_by_step(store, run.run_id).values()) > 0

    # perfhouse killed outright: its watchdog stops the locust it started, and the run ends aborted
    before = set((tmp_path / "runs").iterdir())
    killed = start_long_locust(url, tmp_path, warehouse)
    wait_for_requests(tmp_path, before)
    runs_dir = str(tmp_path / "runs")
    assert processes_mentioning(runs_dir)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while processes_mentioning(runs_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_mentioning(runs_dir)
    assert {r.status for r in Warehouse.open(warehouse).runs(limit=5)} == {"aborted"}
