"""A team's own scripts: which tool's a file is, what a script requests (its fingerprint), its variables kept out of
files and the warehouse, its thresholds and SLOs, and a JMX plan's split over generators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cli import _variables, main
from orchestrator.errors import GenerationError, SpecError
from orchestrator.run import run_fingerprint
from orchestrator.scripts import ScriptKindError, load_script, parse_slo, read_script, referenced_files
from orchestrator.tools import TOOLS, Segment
from orchestrator.tools.jmeter import scale_plan
from orchestrator.tools.k6 import js_tokens, k6_requests, summary_verdicts, threshold_slo
from warehouse.errors import ExitStatus

HERE = Path(__file__).resolve().parent.parent / "integration" / "byo"

K6 = """
import http from 'k6/http';
import { group, sleep } from 'k6';
export const options = { thresholds: { http_req_duration: ['p(95)<500'] } };
// http.get('http://commented.out/')
export default function () {
  group('browse', () => {
    http.get(`${BASE}/products`, { tags: { name: 'list products' } });
    http.batch([['GET', `${BASE}/a`], { method: 'POST', url: `${BASE}/b`, params: { tags: { name: 'b' } } }]);
  });
  http.request('PUT', BASE + '/cart', '{}');
  const re = /http.get\\('nope'\\)/;
  sleep(1);
}
"""


def fingerprint_of(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    spec = load_script(path)
    assert spec.script is not None
    return run_fingerprint(spec, "script", spec.script.tool, "", {})


def test_each_kind_of_file_is_known_by_its_tool(tmp_path: Path) -> None:
    for name, text, tool in (("a.js", "export default function () {}", "k6"),
                             ("a.ts", "export default function () {}", "k6"),
                             ("p.jmx", '<?xml version="1.0"?><jmeterTestPlan version="1.2"><hashTree/></jmeterTestPlan>',
                              "jmeter"),
                             ("locustfile.py", "from locust import HttpUser\n", "locust"),
                             ("l.py", "import locust\n", "locust")):
        (tmp_path / name).write_text(text)
        assert read_script(tmp_path / name)[0].name == tool


@pytest.mark.parametrize("name, text", [("plan.jmx", "<testPlan/>"), ("tool.py", "import requests\n"),
                                        ("missing.js", None)])
def test_a_file_of_no_known_kind_is_a_usage_error(tmp_path: Path, name: str, text: str | None) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ScriptKindError) as caught:
        read_script(tmp_path / name)
    assert caught.value.exit_status == ExitStatus.USAGE and name in str(caught.value)


def test_run_of_an_unknown_kind_of_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2 and "notes.txt" in result.output and len(result.output.strip().splitlines()) == 1


def test_k6_tokens_drop_comments_and_keep_strings_and_regexes_whole() -> None:
    tokens = js_tokens("a = 'x // y'; // gone\nb = /a'b/g; c = `t ${ {k: 'v'} } u`")
    assert [t.text for t in tokens if t.kind == "str"] == ["'x // y'", "`t ${ {k: 'v'} } u`"]
    assert [t.text for t in tokens if t.kind == "regex"] == ["/a'b/g"]


def test_k6_requests_are_the_http_call_sites_with_their_names_and_groups() -> None:
    found = [(r.journey, r.step, r.method, r.path) for r in k6_requests(K6)]
    assert found == [
        ("browse", "list products", "GET", "`${BASE}/products`"),
        ("browse", "`${BASE}/a`", "GET", "`${BASE}/a`"),
        ("browse", "b", "POST", "`${BASE}/b`"),
        ("", "BASE+'/cart'", "PUT", "BASE+'/cart'"),
    ]


def test_k6_fingerprint_keeps_through_think_time_and_thresholds_and_changes_with_a_request(tmp_path: Path) -> None:
    base = fingerprint_of(tmp_path, "shop.js", K6)
    assert fingerprint_of(tmp_path, "shop.js", K6.replace("sleep(1)", "sleep(3)").replace("p(95)<500", "p(99)<9")
                          + "\n// a comment\n") == base
    assert fingerprint_of(tmp_path, "shop.js", K6.replace("sleep(1);", "sleep(1); http.del(`${BASE}/x`);")) != base
    assert fingerprint_of(tmp_path, "other.js", K6) != base  # the script's name is part of it


JMX = (HERE / "shop.jmx").read_text()


def test_jmx_fingerprint_is_the_sampler_tree_not_timers_or_thread_counts(tmp_path: Path) -> None:
    base = fingerprint_of(tmp_path, "shop.jmx", JMX)
    tweaked = (JMX.replace('name="ConstantTimer.delay">20<', 'name="ConstantTimer.delay">500<')
               .replace('name="ThreadGroup.num_threads">2<', 'name="ThreadGroup.num_threads">20<'))
    assert fingerprint_of(tmp_path, "shop.jmx", tweaked) == base
    assert fingerprint_of(tmp_path, "shop.jmx", JMX.replace("<stringProp name=\"HTTPSampler.path\">/cart<",
                                                            "<stringProp name=\"HTTPSampler.path\">/basket<")) != base
    spec = load_script(tmp_path / "shop.jmx")
    assert spec.script is not None
    assert [(r.journey, r.step, r.method) for r in spec.script.requests] == [
        ("shoppers", "list products", "GET"), ("checkout", "login", "POST"), ("checkout", "add to cart", "POST")]


LOCUST = """
from locust import HttpUser, between, task
class Shopper(HttpUser):
    wait_time = between(1, 2)
    @task
    def browse(self):
        self.client.get("/products", name="list products")
        self.client.request("POST", "/cart")
"""


def test_locust_fingerprint_is_the_request_call_sites(tmp_path: Path) -> None:
    base = fingerprint_of(tmp_path, "locustfile.py", LOCUST)
    assert fingerprint_of(tmp_path, "locustfile.py", LOCUST.replace("between(1, 2)", "between(3, 5)")) == base
    assert fingerprint_of(tmp_path, "locustfile.py", LOCUST + '        self.client.get("/x")\n') != base
    (tmp_path / "locustfile.py").write_text(LOCUST)
    spec = load_script(tmp_path / "locustfile.py")
    assert spec.script is not None
    assert [(r.journey, r.step, r.method) for r in spec.script.requests] == [
        ("Shopper", "'list products'", "GET"), ("Shopper", "'/cart'", "POST")]


def test_a_broken_locustfile_or_plan_is_one_located_error(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from locust import task\ndef f(:\n")
    with pytest.raises(SpecError, match=r"bad.py:2:7: not valid Python"):
        load_script(tmp_path / "bad.py")
    (tmp_path / "bad.jmx").write_text('<jmeterTestPlan>\n<hashTree></jmeterTestPlan>')
    with pytest.raises(SpecError, match=r"bad.jmx:2:\d+: not a JMeter plan"):
        load_script(tmp_path / "bad.jmx")
    (tmp_path / "dtd.jmx").write_text('<!DOCTYPE x [<!ENTITY a "b">]><jmeterTestPlan>&a;</jmeterTestPlan>')
    with pytest.raises(SpecError, match="declares no DTD"):
        load_script(tmp_path / "dtd.jmx")


def test_files_a_script_names_are_copied_only_from_inside_its_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.csv").write_text("u\n")
    (tmp_path / "lib.js").write_text("")
    (tmp_path / "shop.js").write_text("")
    outside = tmp_path.parent / "secret.txt"
    candidates = ["./data/users.csv", "lib.js", "shop.js", "../secret.txt", str(outside), "/etc/passwd",
                  "http://x/lib.js", "nope.csv", "data"]
    assert referenced_files(tmp_path, candidates, tmp_path / "shop.js") == [Path("data/users.csv"), Path("lib.js")]


def test_variables_are_name_value_pairs_and_env_names_are_identifiers() -> None:
    assert _variables(("host=staging.example", "empty=", "eq=a=b"), "-J") == {
        "host": "staging.example", "empty": "", "eq": "a=b"}
    assert _variables(("TOKEN=s3cr3t",), "-e") == {"TOKEN": "s3cr3t"}
    for bad, flag in (("novalue", "-J"), ("=x", "-J"), ("1BAD=x", "-e"), ("A B=x", "-e")):
        with pytest.raises(Exception, match="expected NAME=VALUE") as caught:
            _variables((bad,), flag)
        assert "x" not in str(caught.value).split("found", 1)[1].replace("=...", "") or bad.startswith("=")


def test_each_tool_takes_its_own_variables_and_keeps_them_off_its_command_line(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export default function () {}")
    (tmp_path / "p.jmx").write_text(JMX)
    given = {"-e": {"TOKEN": "s3cr3t"}, "-J": {"host": "h0st", "pass word": "p=w"}}
    k6 = load_script(tmp_path / "a.js", given).script
    jmx = load_script(tmp_path / "p.jmx", given).script
    assert k6 is not None and jmx is not None
    assert k6.variables == {"TOKEN": "s3cr3t"} and jmx.variables == {"host": "h0st", "pass word": "p=w"}
    assert "s3cr3t" not in repr(k6) and "h0st" not in repr(jmx)
    env, file = TOOLS["k6"].script_variables(k6.variables)
    assert env == {"TOKEN": "s3cr3t"} and file is None
    env, file = TOOLS["jmeter"].script_variables(jmx.variables)
    assert env == {} and file == b"host=h0st\npass\\ word=p=w\n"
    argv = TOOLS["jmeter"].script_invocation("jmeter", tmp_path / "p.jmx", tmp_path).argv
    assert not any("h0st" in a for a in argv)


def test_a_run_directory_records_variable_names_never_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.run import RunSettings, prepare
    from orchestrator.runners import Target

    (tmp_path / "a.js").write_text("export default function () {}")
    spec = load_script(tmp_path / "a.js", {"-e": {"TOKEN": "s3cr3t-value"}})
    from orchestrator.generators.base import GeneratedScript, GenerationOptions
    from orchestrator.run import Script

    rendered = Script(Target("k6", "1.1.0"), GenerationOptions(profile="script"),
                      GeneratedScript("k6", "a.js", "export default function () {}"))
    plan = prepare(spec, TOOLS["k6"], "script", {}, RunSettings(), tmp_path / "runs", rendered)
    assert plan.secrets == {"TOKEN": "s3cr3t-value"}  # handed to the tool's environment only
    effective = json.loads((plan.directory / "effective.json").read_text())
    assert effective["script"]["variables"] == {"TOKEN": "***"}
    for path in plan.directory.rglob("*"):
        assert b"s3cr3t-value" not in path.read_bytes()


@pytest.mark.parametrize("key, expression, mapped", [
    ("http_req_duration", "p(95)<500", ("p95", 500.0, "", "")),
    ("http_req_duration{name:checkout}", "p(99.9)<=800", ("p99.9", 800.0, "", "checkout")),
    ("http_req_duration{scenario:browse}", "avg<200", ("avg", 200.0, "browse", "")),
    ("http_req_duration", "med<100", ("p50", 100.0, "", "")),
    ("http_req_failed", "rate<0.01", ("error_rate", 0.01, "", "")),
    ("http_reqs", "rate>50", ("throughput", 50.0, "", "")),
    ("http_req_duration{expected_response:true}", "p(95)<500", None),  # not a scope of the warehouse's
    ("http_req_duration{group:::checkout}", "p(95)<500", None),
    ("http_req_duration", "p(95)>500", None),
    ("checks", "rate>0.99", None),
    ("iterations", "count>10", None),
])
def test_k6_thresholds_map_onto_slos_where_they_can(key: str, expression: str,
                                                    mapped: tuple[str, float, str, str] | None) -> None:
    assert threshold_slo(key, expression) == mapped


def test_k6_summary_says_true_for_a_failed_threshold() -> None:
    verdicts = summary_verdicts({"metrics": {
        "http_req_duration{name:product}": {"p(95)": 40.0, "thresholds": {"p(95)<0.001": True, "p(95)<500": False}},
        "checks": {"thresholds": {"rate>0.9": False}}, "iterations": {"count": 3}}})
    assert [(v.name, v.passed, v.metric) for v in verdicts] == [
        ("checks rate>0.9", True, ""),
        ("http_req_duration{name:product} p(95)<0.001", False, "p95"),
        ("http_req_duration{name:product} p(95)<500", True, "p95"),
    ]


@pytest.mark.parametrize("text, metric, threshold, step", [
    ("p95<500", "p95", 500.0, ""),
    ("checkout:p99<0.8s", "p99", 800.0, "checkout"),
    ("http://127.0.0.1:8080/health:p90<250ms", "p90", 250.0, "http://127.0.0.1:8080/health"),
    ("error_rate<1%", "error_rate", 0.01, ""),
    ("add to cart:throughput>50", "throughput", 50.0, "add to cart"),
])
def test_slo_texts_read_as_a_specs_slos(text: str, metric: str, threshold: float, step: str) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.threshold, slo.step) == (metric, threshold, step)


@pytest.mark.parametrize("text", ["p95>500", "throughput<5", "p95", "p101<5", "bogus<5", "a,b:p95<5", "p95<fast"])
def test_bad_slo_texts_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_slo(text)


def test_a_sidecar_gives_slos_with_scopes_and_bad_ones_are_located(tmp_path: Path) -> None:
    (tmp_path / "shop.js").write_text("export default function () {}")
    (tmp_path / "shop.slo.yaml").write_text(
        "slos:\n  - p95<500\n  - {metric: error_rate, threshold: 2%, journey: default, step: cart}\n")
    spec = load_script(tmp_path / "shop.js", slos=["p99<900"])
    assert [(s.metric, s.threshold, s.journey, s.step) for s in spec.slos] == [
        ("p95", 500.0, "", ""), ("error_rate", 0.02, "default", "cart"), ("p99", 900.0, "", "")]
    (tmp_path / "shop.slo.yaml").write_text("slos:\n  - {metric: p95, threshold: 500ms, jorney: x}\n")
    with pytest.raises(SpecError, match=r"shop.slo.yaml:2:\d+: slos\[0\].jorney: unknown field"):
        load_script(tmp_path / "shop.js")


def test_a_jmx_splits_its_thread_groups_or_says_why_it_cannot() -> None:
    parts = [scale_plan(JMX, Segment(i, 3)) for i in range(3)]
    threads = [None if p is None else p.split('name="ThreadGroup.num_threads">', 1)[1].split("<", 1)[0]
               for p in parts]
    assert threads[:2] == ["1", "1"] and parts[2] is None  # 2 threads over 3 generators: the third gets none
    as_property = JMX.replace('num_threads">2<', 'num_threads">${__P(threads,2)}<')
    assert 'num_threads">1<' in (scale_plan(as_property, Segment(1, 2)) or "")  # its default, 2, split in two
    assert 'num_threads">5<' in (scale_plan(as_property, Segment(1, 2), {"threads": "10"}) or "")  # -Jthreads=10
    assert 'num_threads">5<' in (scale_plan(JMX.replace('num_threads">2<', 'num_threads">${__property(threads,,4)}<'),
                                            Segment(1, 2), {"threads": "10"}) or "")
    for written in ("${__P(threads)}", "${__Random(1,5)}", "${threads}"):
        with pytest.raises(GenerationError, match="not a number"):
            scale_plan(JMX.replace('num_threads">2<', f'num_threads">{written}<'), Segment(0, 2))
    with pytest.raises(GenerationError, match="ConstantThroughputTimer"):
        scale_plan(JMX.replace("<ConstantTimer ", "<ConstantThroughputTimer ").replace(
            "</ConstantTimer>", "</ConstantThroughputTimer>"), Segment(0, 2))


def test_locust_and_k6_scripts_are_not_split_by_copies() -> None:
    with pytest.raises(GenerationError, match="Locust cannot split"):
        TOOLS["locust"].scale_script(LOCUST, Segment(0, 2), {})
    assert not TOOLS["locust"].splits and TOOLS["k6"].splits and not TOOLS["k6"].scaled_scripts


def test_hostile_property_values_stay_one_property_each() -> None:
    _, file = TOOLS["jmeter"].script_variables({"x": "1\nevil=2", "k=ey": "#not a comment", "u": "\u00e9\\"})
    assert file is not None
    assert file.decode("ascii").splitlines() == ["k\\=ey=\\#not a comment", "u=\\u00e9\\\\", "x=1\\nevil=2"]


def test_spec_options_and_script_options_do_not_mix(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export default function () {}")
    (tmp_path / "s.yaml").write_text("name: s\n")
    runner = CliRunner()
    for args, said in ((["--profile", "ci"], "--profile is for specs"), (["--tool", "jmeter"], "--tool is for specs"),
                       (["-Jhost=x"], "-J passes variables to jmeter"), (["--slo", "p95>5"], "must stay below")):
        result = runner.invoke(main, ["run", str(tmp_path / "a.js"), *args])
        assert result.exit_code == 2 and said in result.output, result.output
    result = runner.invoke(main, ["run", str(tmp_path / "a.js"), str(tmp_path / "s.yaml")])
    assert result.exit_code == 2 and "runs alone" in result.output
    result = runner.invoke(main, ["run", str(tmp_path / "s.yaml"), "-e", "A=b", "--profile", "ci"])
    assert result.exit_code == 2 and "are for scripts" in result.output


def test_a_missing_tool_is_one_line_and_exit_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop.js").write_text("export default function () {}")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "shop.js")])
    assert result.exit_code == 5 and "shop.js is a k6 script, and k6 is not installed" in result.output
    assert len(result.output.strip().splitlines()) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"`${}'\"/*\n,:[]{}() ", "http.get(", "http.batch([", "group(", "tags", "name",
                                  "'x'", "http.request("]), max_size=60).map("".join))
def test_reading_any_text_as_a_k6_script_never_fails(text: str) -> None:
    facts = TOOLS["k6"].script_facts(text, "fuzz.js")
    assert all(isinstance(r.path, str) for r in facts.requests)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_a_plan_or_locustfile_is_read_or_refused_in_one_line(text: str) -> None:
    for tool, name in (("jmeter", "fuzz.jmx"), ("locust", "fuzz.py")):
        try:
            TOOLS[tool].script_facts(text, name)
        except SpecError as exc:
            assert name in str(exc) and "\n" not in str(exc).split(": ", 1)[0]
