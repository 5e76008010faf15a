"""import-jmx as pure logic: what each JMeter element becomes, what is left out, and plans that are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import ExitStatus
from orchestrator.jmx import PlanError, import_jmx, jmx_to_spec
from orchestrator.spec import parse_spec
from tests.conftest import ROOT

PLANS = ROOT / "tests" / "fixtures" / "jmx"


def plan(thread_group: str, body: str = "", top: str = "") -> bytes:
    """A 5.x-style plan: one thread group (its properties given) holding `body`, `top` beside it."""
    sampler = ('<HTTPSamplerProxy guiclass="HttpTestSampleGui" testclass="HTTPSamplerProxy" testname="home">'
               '<stringProp name="HTTPSampler.domain">127.0.0.1</stringProp>'
               '<stringProp name="HTTPSampler.path">/</stringProp>'
               '<stringProp name="HTTPSampler.method">GET</stringProp></HTTPSamplerProxy><hashTree/>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<jmeterTestPlan version="1.2" properties="5.0" jmeter="5.6.3">'
            f'<hashTree><TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname="P"/><hashTree>{top}'
            f'<ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="TG">{thread_group}'
            f'</ThreadGroup><hashTree>{sampler}{body}</hashTree></hashTree></hashTree></jmeterTestPlan>').encode()


def loops(n: int) -> str:
    return ('<elementProp name="ThreadGroup.main_controller" elementType="LoopController">'
            f'<intProp name="LoopController.loops">{n}</intProp>'
            '<boolProp name="LoopController.continue_forever">false</boolProp></elementProp>')


def test_orders_plan_maps_extractors_throughput_timers_and_lists_what_it_leaves_out() -> None:
    doc, imp = jmx_to_spec((PLANS / "orders-5.x.jmx").read_bytes(), "orders", str(PLANS / "orders-5.x.jmx"))
    buyers, browsers = doc["journeys"]
    login, products, cart = buyers["steps"]
    assert doc["services"] == {"shop": "https://shop.example.com"}  # the defaults of ${__P(...)}
    assert doc["defaults"] == {"headers": {"Accept": "application/json"}, "timeout": "4000ms"}
    assert login["body"] == {"raw": '{"user":"${user}","password":"secret"}', "content_type": "application/json"}
    assert login["extract"] == {"token": {"jsonpath": "$.token"}} and "timeout" not in login
    assert products["query"] == {"category": "books"}
    assert products["extract"] == {"product_id": {"regex": r'\{"id": ([\s\S]*?), '}}
    assert cart["headers"] == {"Authorization": "Bearer ${token}"}
    assert cart["checks"] == [{"status": 201, "name": "created"}]
    assert browsers["steps"][0]["path"] == "/products/$${__Random(1,40)}"  # a function: literal, and said so
    assert doc["profiles"]["plan"]["journeys"] == {
        # 120 samples a minute in the group, 3 requests an iteration: 40 iterations a minute
        "Buyers": {"executor": "constant_arrival_rate", "rate": 40, "time_unit": "1m", "duration": "60s",
                   "pre_allocated_vus": 3, "max_vus": 3},
        "Browsers": {"executor": "ramping_arrival_rate", "start_rate": 1, "time_unit": "1s",
                     "stages": [{"duration": "10s", "target": 5}, {"duration": "20s", "target": 5}],
                     "pre_allocated_vus": 4, "max_vus": 4},
    }
    assert [line.split(" [")[0] for line in imp.left_out] == [
        "Orders / setUp Thread Group", "Orders / Buyers / GET /products / not empty",
        "Orders / Buyers / GET /products / books or games", "Orders / Buyers / POST /cart / sign",
        "Orders / Buyers / Payment steps", "Orders / Browsers / Random product / has a price",
        "Orders / Browsers / Upload avatar"]
    assert any("${__Random(1,40)}" in note and "literal" in note for note in imp.notes)
    assert any("startnextloop" in note for note in imp.notes)
    assert imp.not_needed == ["Orders / Backend Listener [BackendListener]: a listener: perfhouse records every "
                              "result itself"]


def test_every_fixture_imports_to_a_spec_that_loads(tmp_path: Path) -> None:
    for path in sorted(PLANS.glob("*.jmx")):
        result = import_jmx(path, path.stem.split("-")[0])
        for name, content in result.files.items():
            (tmp_path / name).write_bytes(content)
        spec = parse_spec(result.text, str(tmp_path / "spec.yaml"))
        assert spec.journeys and "plan" in spec.profiles, path
        assert all(f"#   {line.split(' [')[0]}" in result.text for line in result.left_out), path


@pytest.mark.parametrize(("group", "profile"), [
    (f'<intProp name="ThreadGroup.num_threads">5</intProp>{loops(3)}',
     {"executor": "iterations", "vus": 5, "iterations": 3}),
    ('<intProp name="ThreadGroup.num_threads">4</intProp><boolProp name="ThreadGroup.scheduler">true</boolProp>'
     f'<longProp name="ThreadGroup.duration">90</longProp>{loops(-1)}',
     {"executor": "constant_vus", "vus": 4, "duration": "90s"}),
    ('<intProp name="ThreadGroup.num_threads">10</intProp><intProp name="ThreadGroup.ramp_time">30</intProp>'
     '<boolProp name="ThreadGroup.scheduler">true</boolProp><longProp name="ThreadGroup.duration">120</longProp>'
     f'<longProp name="ThreadGroup.delay">15</longProp>{loops(-1)}',
     {"executor": "ramping_vus", "stages": [{"duration": "15s", "target": 0}, {"duration": "30s", "target": 10},
                                            {"duration": "90s", "target": 10}]}),
    # 2.13 keeps numbers as strings and a property's default stands in for it
    ('<stringProp name="ThreadGroup.num_threads">${__P(users,7)}</stringProp>'
     '<stringProp name="ThreadGroup.ramp_time">0</stringProp><boolProp name="ThreadGroup.scheduler">false</boolProp>'
     '<elementProp name="ThreadGroup.main_controller" elementType="LoopController">'
     '<boolProp name="LoopController.continue_forever">false</boolProp>'
     '<stringProp name="LoopController.loops">${__P(loops,4)}</stringProp></elementProp>',
     {"executor": "iterations", "vus": 7, "iterations": 4}),
    (f'<intProp name="ThreadGroup.num_threads">2</intProp>{loops(-1)}',  # until stopped: a bounded duration
     {"executor": "constant_vus", "vus": 2, "duration": "300s"}),
])
def test_thread_groups_become_the_profile_that_matches(group: str, profile: dict[str, object]) -> None:
    doc, _ = jmx_to_spec(plan(group), "p")
    assert doc["profiles"]["plan"] == profile


def test_a_constant_throughput_timer_per_thread_is_a_rate_for_all_threads() -> None:
    timer = ('<ConstantThroughputTimer guiclass="TestBeanGUI" testclass="ConstantThroughputTimer" testname="CTT">'
             '<intProp name="calcMode">0</intProp><doubleProp><name>throughput</name><value>10.0</value>'
             '<savedValue>0.0</savedValue></doubleProp></ConstantThroughputTimer><hashTree/>')
    doc, _ = jmx_to_spec(plan(f'<intProp name="ThreadGroup.num_threads">3</intProp>{loops(20)}', timer), "p")
    # 10 samples a minute for each of 3 threads, one request an iteration: 30 a minute; 60 iterations take 2m
    assert doc["profiles"]["plan"] == {"executor": "constant_arrival_rate", "rate": 30, "time_unit": "1m",
                                       "duration": "120s", "pre_allocated_vus": 3, "max_vus": 3}


def controller(kind: str, inner: str = "", props: str = "") -> str:
    sampler = ('<HTTPSamplerProxy testclass="HTTPSamplerProxy" testname="inner">'
               '<stringProp name="HTTPSampler.domain">127.0.0.1</stringProp>'
               '<stringProp name="HTTPSampler.path">/inner</stringProp></HTTPSamplerProxy><hashTree/>')
    return f'<{kind} testclass="{kind}" testname="ctl">{props}</{kind}><hashTree>{inner or sampler}</hashTree>'


@pytest.mark.parametrize("kind", ["IfController", "WhileController", "SwitchController", "ForeachController",
                                  "OnceOnlyController", "RunTime", "ThroughputController", "RandomController",
                                  "RandomOrderController", "InterleaveControl", "ModuleController",
                                  "IncludeController", "kg.apc.jmeter.control.ParallelSampler"])
def test_conditional_controllers_are_left_out_with_their_children_never_run_unconditionally(kind: str) -> None:
    doc, imp = jmx_to_spec(plan(loops(1), controller(kind)), "p")
    assert [s["path"] for s in doc["journeys"][0]["steps"]] == ["/"]
    assert imp.left_out[0].startswith(f"P / TG / ctl [{kind}]") and "(and the 1 element under it)" in imp.left_out[0]


def test_fixed_loops_are_written_out_and_others_left_out() -> None:
    body = (controller("LoopController", props='<stringProp name="LoopController.loops">2</stringProp>')
            + controller("LoopController", props='<stringProp name="LoopController.loops">${n}</stringProp>')
            + controller("LoopController", props='<intProp name="LoopController.loops">-1</intProp>'))
    doc, imp = jmx_to_spec(plan(loops(1), body), "p")
    steps = doc["journeys"][0]["steps"]
    assert [(s["path"], s.get("label", s["name"])) for s in steps] == [("/", "home"), ("/inner", "inner"),
                                                                        ("/inner", "inner (2)")]
    assert [line.split(": ", 1)[1] for line in imp.left_out] == [
        "a loop count known only at run time (and the 1 element under it)",
        "loops until the thread stops (and the 1 element under it)"]


def test_header_managers_apply_at_their_scope_the_nearest_winning() -> None:
    def headers(name: str, pairs: dict[str, str]) -> str:
        items = "".join(f'<elementProp name="" elementType="Header"><stringProp name="Header.name">{k}</stringProp>'
                        f'<stringProp name="Header.value">{v}</stringProp></elementProp>' for k, v in pairs.items())
        return (f'<HeaderManager testclass="HeaderManager" testname="{name}"><collectionProp '
                f'name="HeaderManager.headers">{items}</collectionProp></HeaderManager><hashTree/>')

    inner = ('<HTTPSamplerProxy testclass="HTTPSamplerProxy" testname="inner"><stringProp name="HTTPSampler.domain">'
             '127.0.0.1</stringProp><stringProp name="HTTPSampler.path">/inner</stringProp></HTTPSamplerProxy>'
             f'<hashTree>{headers("own", {"x-b": "own"})}</hashTree>')
    body = controller("TransactionController", headers("tx", {"X-B": "tx", "X-C": "tx"}) + inner)
    doc, _ = jmx_to_spec(plan(loops(1), body, top=headers("plan", {"X-A": "plan", "X-B": "plan"})), "p")
    home, grouped = doc["journeys"][0]["steps"]
    assert doc["defaults"] == {"headers": {"X-A": "plan"}}
    assert home["headers"] == {"X-B": "plan"} and "group" not in home
    assert grouped["headers"] == {"x-b": "own", "X-C": "tx"} and grouped["group"] == "ctl"


HOSTILE = [
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
     b"<jmeterTestPlan>&lol2;</jmeterTestPlan>", "DOCTYPE"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><jmeterTestPlan>&xxe;'
     b"</jmeterTestPlan>", "DOCTYPE"),
    (b"<jmeterTestPlan><hashTree><TestPlan testclass='TestPlan'></hashTree>", "not well-formed"),
    (b"", "not well-formed"),
    (b"\xff\xfe<\x00x", "not well-formed"),
    (b"<html><body/></html>", "not a JMeter test plan"),
    (b"<jmeterTestPlan/>", "no hashTree"),
    (b"<jmeterTestPlan>" + b"<a>" * 1000 + b"</a>" * 1000 + b"</jmeterTestPlan>", "nested deeper"),
    (b"<jmeterTestPlan><hashTree><hashTree/></hashTree></jmeterTestPlan>", "follows no element"),
    (plan(loops(1)).replace(b"ThreadGroup", b"SetupThreadGroup"), "no thread group"),
]


@pytest.mark.parametrize(("data", "message"), HOSTILE)
def test_hostile_or_broken_plans_are_refused_with_a_located_error(data: bytes, message: str) -> None:
    with pytest.raises(PlanError) as info:
        jmx_to_spec(data, "p", "bad.jmx")
    assert message in str(info.value) and str(info.value).startswith("bad.jmx")
    assert info.value.exit_status == ExitStatus.USAGE


def test_the_command_refuses_a_broken_plan_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.jmx"
    path.write_bytes(b'<?xml version="1.0"?>\n<jmeterTestPlan>\n  <hashTree>\n    <TestPlan>\n</jmeterTestPlan>\n')
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "import-jmx", str(path), "-o",
                           str(tmp_path / "spec.yaml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"perfhouse: error: {path}:5:3: not well-formed XML: mismatched tag")
    assert not (tmp_path / "spec.yaml").exists()


def test_a_plan_value_cannot_inject_into_the_spec() -> None:
    sneaky = '${env:HOME} $$ "quoted" \n- name: injected'
    body = ('<HTTPSamplerProxy testclass="HTTPSamplerProxy" testname="x: [y]"><stringProp name="HTTPSampler.domain">'
            f'127.0.0.1</stringProp><stringProp name="HTTPSampler.path">/a b%zz</stringProp>'
            '<elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp '
            'name="Arguments.arguments"><elementProp name="q" elementType="HTTPArgument"><boolProp '
            f'name="HTTPArgument.always_encode">true</boolProp><stringProp name="Argument.value">{sneaky}</stringProp>'
            '<stringProp name="Argument.name">q</stringProp></elementProp></collectionProp></elementProp>'
            '</HTTPSamplerProxy><hashTree/>')
    result = import_jmx_bytes(plan(loops(1), body))
    spec = parse_spec(result, "<imported>")
    step = spec.journeys[0].steps[1]
    assert step.key == "x: [y]" and step.path.render({}) == "/a b%25zz"
    assert dict(step.query)["q"].render({}) == sneaky and not dict(step.query)["q"].env_refs


def import_jmx_bytes(data: bytes) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.jmx"
        path.write_bytes(data)
        return import_jmx(path, "p").text


def test_the_data_file_never_replaces_the_plans_own_csv(tmp_path: Path) -> None:
    for name in ("shop-2.13.jmx", "users.csv"):
        (tmp_path / name).write_bytes((PLANS / name).read_bytes())
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "import-jmx", "shop-2.13.jmx", "-o", "shop.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "users.csv").read_bytes() == (PLANS / "users.csv").read_bytes()  # JMeter's, headerless
    assert (tmp_path / "users_2.csv").read_text() == "user,password\ndemo,secret\nalice,pa$w0rd\n"
    assert "file: users_2.csv" in (tmp_path / "shop.yaml").read_text()
    again = subprocess.run([sys.executable, "-m", "orchestrator", "import-jmx", "shop-2.13.jmx", "-o", "shop.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "file: users_2.csv" in (tmp_path / "shop.yaml").read_text()  # the same file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop-2.13.jmx", "shop.yaml", "users.csv", "users_2.csv"]


def test_a_plugin_thread_group_is_left_out_with_its_requests() -> None:
    other = ('<com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup testclass="com.blazemeter.jmeter.'
             'threads.concurrency.ConcurrencyThreadGroup" testname="Concurrency"/><hashTree>'
             + controller("GenericController") + "</hashTree>")
    doc, imp = jmx_to_spec(plan(loops(1), top=other), "p")
    assert [j["name"] for j in doc["journeys"]] == ["TG"]
    assert imp.left_out == ["P / Concurrency [com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup]: a "
                            "thread group of a kind the import does not translate (give the journey a profile of its "
                            "own) (and the 2 elements under it)"]


def test_nested_loops_that_would_explode_are_left_out() -> None:
    inner = controller("LoopController", props='<stringProp name="LoopController.loops">20</stringProp>')
    nested = inner
    for _ in range(4):  # 20^5 requests written out
        nested = controller("LoopController", nested, '<stringProp name="LoopController.loops">20</stringProp>')
    doc, imp = jmx_to_spec(plan(loops(1), nested), "p")
    assert len(doc["journeys"][0]["steps"]) == 1
    assert "longer than 1000 steps" in imp.left_out[0]


@pytest.mark.parametrize("regex", ["(?i)token=(\\w+)", "token=(\\w++)", "\\Atoken=(\\w+)", "t=([[:alpha:]]+)"])
def test_patterns_only_java_reads_are_left_out(regex: str) -> None:
    extractor = ('<RegexExtractor testclass="RegexExtractor" testname="rx"><stringProp name="RegexExtractor.refname">'
                 f'v</stringProp><stringProp name="RegexExtractor.regex">{regex}</stringProp><stringProp '
                 'name="RegexExtractor.template">$1$</stringProp></RegexExtractor><hashTree/>')
    doc, imp = jmx_to_spec(plan(loops(1), extractor), "p")
    assert "extract" not in doc["journeys"][0]["steps"][0]
    assert imp.left_out == [f"P / TG / rx [RegexExtractor]: a pattern in syntax k6 or Locust cannot read: {regex!r}"]


def test_headers_that_would_split_a_request_are_left_out() -> None:
    manager = ('<HeaderManager testclass="HeaderManager" testname="h"><collectionProp name="HeaderManager.headers">'
               '<elementProp name="" elementType="Header"><stringProp name="Header.name">X-A</stringProp>'
               '<stringProp name="Header.value">a&#13;&#10;X-Evil: 1</stringProp></elementProp>'
               '<elementProp name="" elementType="Header"><stringProp name="Header.name">Bad Name:</stringProp>'
               '<stringProp name="Header.value">b</stringProp></elementProp>'
               '<elementProp name="" elementType="Header"><stringProp name="Header.name">X-Ok</stringProp>'
               '<stringProp name="Header.value">c</stringProp></elementProp></collectionProp></HeaderManager>'
               '<hashTree/>')
    doc, imp = jmx_to_spec(plan(loops(1), manager), "p")
    assert doc["defaults"] == {"headers": {"X-Ok": "c"}}
    assert sum("is not a valid HTTP header" in note for note in imp.notes) == 2


def test_without_output_the_spec_goes_to_stdout_and_its_data_beside_the_caller(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "import-jmx", str(PLANS / "steady-2.13.jmx")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Journey spec imported by perfhouse from the JMeter plan steady-2.13.jmx.")
    assert (tmp_path / "items.csv").read_text() == "id,colour\n11,red\n12,green\n13,blue\n"
    assert "not needed: Test Plan / Old traffic [ThreadGroup]: disabled in the plan" in proc.stderr
    parse_spec(proc.stdout, str(tmp_path / "spec.yaml"))


@pytest.mark.parametrize("filename", ["/etc/passwd", "../outside.csv", "link.csv", "missing.csv"])
def test_a_csv_data_set_reads_only_files_in_the_plans_folder(filename: str, tmp_path: Path) -> None:
    (tmp_path / "outside.csv").write_text("secret\nx\n")
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    data = ('<CSVDataSet testclass="CSVDataSet" testname="data"><stringProp name="filename">'
            f'{filename}</stringProp><stringProp name="variableNames">a</stringProp></CSVDataSet><hashTree/>')
    (folder / "plan.jmx").write_bytes(plan(loops(1), data))
    result = import_jmx(folder / "plan.jmx", "p", tmp_path / "out")
    assert result.files == {} and "data:" not in result.text
    reason = "cannot read missing.csv" if filename == "missing.csv" else "lies outside the plan's folder"
    assert result.left_out[0].startswith("P / TG / data [CSVDataSet]: ") and reason in result.left_out[0]
