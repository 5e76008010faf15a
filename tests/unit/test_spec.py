"""The journey spec: loading, the model, and errors that name file, line, column and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import Template, load_spec, parse_duration, parse_jsonpath, parse_spec, split_by_weight

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """\
name: mini
services:
  api: http://127.0.0.1:8080
journeys:
  - name: only
    steps:
      - name: home
        path: /
profiles:
  smoke: {executor: iterations, vus: 1, iterations: 1}
"""


def test_example_spec_loads_with_every_part() -> None:
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    assert [j.name for j in spec.journeys] == ["browse", "checkout"]
    assert [j.weight for j in spec.journeys] == [3, 1]
    browse = spec.journeys[0]
    assert browse.steps[0].extract[0].var == "product_id"
    assert browse.steps[1].path.refs == ["product_id"]
    assert spec.profiles["ci"].executor == "constant_vus"
    assert {s.metric for s in spec.slos} == {"p95", "error_rate", "p99"}
    assert spec.slos[1].threshold == pytest.approx(0.01)


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec(MINIMAL, "mini.yaml")
    step = spec.journeys[0].steps[0]
    assert (step.method, step.service, step.timeout_s, step.think_time) == ("GET", "api", 30.0, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), (5, 5.0), (0.5, 0.5)],
)
def test_durations(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "5 s", "-1s", True])
def test_bad_durations_are_refused(text: object) -> None:
    if text == "10":  # a bare number in a string is not a duration; bare YAML numbers are seconds
        with pytest.raises(ValueError):
            parse_duration(text)
        return
    with pytest.raises(ValueError):
        parse_duration(text)


def test_jsonpath_member_and_index_steps() -> None:
    assert parse_jsonpath("$.items[0].id") == ("items", 0, "id")
    assert parse_jsonpath("$['a b'].c") == ("a b", "c")
    with pytest.raises(ValueError, match="only member and index"):
        parse_jsonpath("$..id")


def test_template_parts_and_source_round_trip() -> None:
    t = Template.parse("/products/${id}?x=${ y }&price=$$5&lit=$${id}")
    assert t.refs == ["id"]
    assert t.parts[1:] == ("?x=${ y }&price=$5&lit=${id}",) or t.parts[-1] == "?x=${ y }&price=$5&lit=${id}"
    assert Template.parse(t.source) == t


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "shop.yaml")
    return info.value


def test_unknown_field_names_line_column_and_suggests() -> None:
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        methd: POST"))
    assert (err.file, err.line, err.column) == ("shop.yaml", 9, 9)
    assert err.field == "journeys[0].steps[0].methd"
    assert "did you mean 'method'" in str(err)
    assert str(err).startswith("shop.yaml:9:9: journeys[0].steps[0].methd: unknown field")


def test_undefined_variable_is_located() -> None:
    err = _error(MINIMAL.replace("path: /", "path: /items/${item_id}"))
    assert err.field == "journeys[0].steps[0].path"
    assert err.line == 8
    assert "${item_id}" in str(err)


def test_variable_extracted_by_later_step_is_not_visible_earlier() -> None:
    text = MINIMAL.replace(
        "      - name: home\n        path: /",
        "      - name: a\n        path: /${tok}\n      - name: b\n        path: /\n"
        "        extract: {tok: {header: X-Token}}",
    )
    assert "not a variable or a value extracted by an earlier step" in str(_error(text))


def test_invalid_yaml_is_located() -> None:
    err = _error("name: x\nservices: [unclosed\n")
    assert err.line >= 2 and "not valid YAML" in str(err)


def test_wrong_type_and_missing_field() -> None:
    assert "expected an integer" in str(
        _error(MINIMAL.replace("  - name: only", "  - name: only\n    weight: lots"))
    )
    assert "missing required field 'profiles'" in str(_error(MINIMAL.split("profiles:")[0]))


def test_bad_regex_and_unknown_profile_executor() -> None:
    text = MINIMAL.replace("        path: /", "        path: /\n        extract: {x: {regex: '([a-z]'}}")
    assert "not a valid regular expression" in str(_error(text))
    text = MINIMAL.replace("executor: iterations", "executor: constant_vu")
    assert "did you mean 'constant_vus'" in str(_error(text))


def test_slo_scope_must_exist() -> None:
    text = MINIMAL + "slos:\n  - {metric: p95, threshold: 1s, step: hom}\n"
    err = _error(text)
    assert err.field == "slos[0].step" and "did you mean 'home'" in str(err)


def test_unknown_profile_lists_the_defined_ones() -> None:
    spec = parse_spec(MINIMAL, "mini.yaml")
    with pytest.raises(SpecError, match="defined: smoke"):
        spec.profile("smok")


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (4, [("a", 3), ("b", 1)], {"a": 3, "b": 1}),
        (10, [("a", 10), ("b", 1)], {"a": 9, "b": 1}),
        (1, [("a", 3), ("b", 1)], {"a": 1, "b": 1}),
        (7, [("a", 1), ("b", 1), ("c", 1)], {"a": 3, "b": 2, "c": 2}),
    ],
)
def test_vus_shared_by_weight(total: int, weights: list[tuple[str, int]], expected: dict[str, int]) -> None:
    assert split_by_weight(total, weights) == expected


def test_empty_parameter_names_are_refused() -> None:
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        query: {'': x}"))
    assert err.field == "journeys[0].steps[0].query" and "cannot be empty" in str(err)


def test_check_values_take_spec_variables_and_dollar_escapes() -> None:
    text = MINIMAL.replace("journeys:", "variables: {v: two}\njourneys:").replace(
        "        path: /",
        "        path: /\n        checks:\n          - body_contains: 'one ${v} $${v}'\n"
        "          - header: {name: X-V, equals: '${v}'}\n          - jsonpath: {path: $.a, equals: $$5}",
    )
    checks = parse_spec(text, "shop.yaml").journeys[0].steps[0].checks
    assert [c.target for c in checks[:1]] + [c.equals for c in checks[1:]] == ["one two ${v}", "two", "$5"]


@pytest.mark.parametrize("ref", ["${tok}", "${env:TOKEN}"])
def test_check_values_refuse_run_time_values(ref: str) -> None:
    text = MINIMAL.replace(
        "        path: /",
        f"        path: /\n        extract: {{tok: {{header: X-T}}}}\n        checks:\n          - body_contains: 'a{ref}'",
    )
    err = _error(text)
    assert err.field == "journeys[0].steps[0].checks[0].body_contains"
    assert "literal text or spec variables" in str(err) and "$$" in str(err)


def test_service_url_is_literal() -> None:
    err = _error(MINIMAL.replace("http://127.0.0.1:8080", "http://${host}:8080"))
    assert err.field == "services.api" and "PERFHOUSE_SERVICE_" in str(err)


def test_path_with_a_bare_percent_is_refused() -> None:
    err = _error(MINIMAL.replace("path: /", "path: /50%off"))
    assert err.field == "journeys[0].steps[0].path" and "%25" in str(err)


def test_services_are_retargeted_by_one_variable_each() -> None:
    from orchestrator.spec import service_env

    assert service_env("api") == "PERFHOUSE_SERVICE_API"
    assert service_env("auth-v2.eu") == "PERFHOUSE_SERVICE_AUTH_V2_EU"
    err = _error(MINIMAL.replace("  api: http://127.0.0.1:8080", "  api: http://127.0.0.1:8080\n  API: http://h:1"))
    assert err.field == "services.API" and "PERFHOUSE_SERVICE_API" in str(err)
    err = _error(MINIMAL.replace("journeys:", "variables: {perfhouse.service.api.host: x}\njourneys:"))
    assert err.field == "variables.perfhouse.service.api.host"


LABELLED = MINIMAL.replace("  - name: only\n", "  - name: only\n    label: The only one\n").replace(
    "      - name: home\n", "      - name: home\n        label: home page, first\n")


def test_labels_name_steps_and_journeys_in_results_and_slo_scopes() -> None:
    spec = parse_spec(LABELLED.replace("home page, first", "home page (first)")
                      + "slos:\n  - {metric: p95, threshold: 1s, journey: only, step: home}\n", "l.yaml")
    journey = spec.journeys[0]
    assert (journey.key, journey.steps[0].key) == ("The only one", "home page (first)")
    assert spec.step_services() == {("The only one", "home page (first)"): "api"}
    assert (spec.slos[0].journey, spec.slos[0].step) == ("The only one", "home page (first)")
    assert parse_spec(MINIMAL, "m.yaml").journeys[0].steps[0].key == "home"


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda t: t.replace("label: The only one", "label: ' padded '"), "journeys[0].label", "on one line"),
    (lambda t: t + "slos:\n  - {metric: p95, threshold: 1s, step: home}\n", "slos[0].step", "comma"),
    (lambda t: t.replace("        path: /\n", "        path: /\n      - {name: two, path: /, label: "
                                            "'home page, first'}\n"), "journeys[0].steps[1].label", "already"),
])
def test_bad_labels_are_located(change: Any, field: str, message: str) -> None:
    err = _error(change(LABELLED))
    assert err.field == field and message in str(err)


def test_expected_statuses_and_untyped_bodies() -> None:
    step = MINIMAL.replace("        path: /", "        path: /\n        expected_statuses: [404, 200, 404]\n"
                                             "        method: POST\n        body: {raw: x, content_type: ''}")
    parsed = parse_spec(step, "s.yaml").journeys[0].steps[0]
    assert parsed.expected_statuses == (200, 404) and parsed.body is not None and parsed.body.content_type == ""
    assert parse_spec(MINIMAL, "m.yaml").journeys[0].steps[0].expected_statuses == ()
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        expected_statuses: [200, 700]"))
    assert err.field == "journeys[0].steps[0].expected_statuses"
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        body: {form: {a: b}, content_type: null}"))
    assert err.field == "journeys[0].steps[0].body.content_type"


def test_check_names_and_step_tags() -> None:
    text = MINIMAL.replace("        path: /", "        path: /\n        tags: {team: pay, tier: 1}\n        checks:\n"
                                             "          - {status: 200, name: served}\n          - status: 201")
    step = parse_spec(text, "t.yaml").journeys[0].steps[0]
    assert [c.label for c in step.checks] == ["served", "status is 201"] and step.tags == (("team", "pay"), ("tier", "1"))
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        tags: {journey: x}"))
    assert err.field == "journeys[0].steps[0].tags.journey" and "sets itself" in str(err)
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        checks:\n          - {status: 200, name: a}\n"
                                                  "          - {status: 201, name: a}"))
    assert err.field == "journeys[0].steps[0].checks[1].name"


def test_think_time_after_groups_and_journeys() -> None:
    text = MINIMAL.replace("  - name: only\n", "  - name: only\n    think_time: 1s\n    groups: {g: {think_time: 700ms}}\n"
                           ).replace("        path: /", "        path: /\n        group: g")
    journey = parse_spec(text, "p.yaml").journeys[0]
    assert journey.think_time is not None and journey.think_time.min_s == 1.0
    assert journey.after_group("g") is not None and journey.after_group("g").min_s == 0.7  # type: ignore[union-attr]
    err = _error(text.replace("groups: {g:", "groups: {h:"))
    assert err.field == "journeys[0].groups.h" and "no step of 'only' is in a group 'h'" in str(err)


TWO = MINIMAL.replace("journeys:\n", "journeys:\n  - name: other\n    weight: 3\n    steps: [{name: s, path: /}]\n")


def test_a_journey_may_have_a_profile_of_its_own() -> None:
    from orchestrator.generators.base import journey_vus

    text = TWO.replace("  smoke: {executor: iterations, vus: 1, iterations: 1}",
                       "  mixed:\n    journeys:\n      other: {executor: constant_vus, vus: 5, duration: 10s}\n"
                       "      only: {executor: constant_arrival_rate, rate: 3, duration: 20s, max_vus: 4}\n"
                       "  half:\n    executor: iterations\n    vus: 2\n    journeys: {only: {preset: smoke}}")
    spec = parse_spec(text, "m.yaml")
    mixed = spec.profiles["mixed"]
    assert not mixed.shared and mixed.of("other").vus == 5 and mixed.of("only").rate == 3
    assert (mixed.max_vus, mixed.total_duration_s) == (9, 20.0)
    alloc = {a.journey.name: a for a in journey_vus(spec, mixed)}
    assert (alloc["other"].vus, alloc["only"].rate, alloc["only"].max_vus) == (5, 3, 4)
    half = {a.journey.name: (a.profile.executor, a.vus) for a in journey_vus(spec, spec.profiles["half"])}
    assert half == {"other": ("iterations", 2), "only": ("constant_vus", 1)}  # `other` alone shares the 2 VUs


@pytest.mark.parametrize(("profile", "field", "message"), [
    ("{journeys: {only: {preset: smoke}}}", "profiles.p.journeys", "'other' has no load"),
    ("{journeys: {nope: {preset: smoke}}, preset: smoke}", "profiles.p.journeys.nope", "no journey named"),
    ("{preset: smoke, journeys: {only: {preset: smoke}, other: {preset: smoke}}}", "profiles.p", "no load"),
    ("{journeys: {only: {preset: smoke, journeys: {}}, other: {preset: smoke}}}", "profiles.p.journeys.only.journeys",
     "unknown field"),
])
def test_per_journey_profiles_are_checked(profile: str, field: str, message: str) -> None:
    err = _error(TWO.replace("  smoke: {executor: iterations, vus: 1, iterations: 1}", f"  p: {profile}"))
    assert err.field == field and message in str(err)


@pytest.mark.parametrize(("trace", "expected"), [
    ("", (False, "")),
    ("trace: true\n", (True, "")),
    ("trace: {url: 'https://tempo.example/trace/{trace_id}'}\n", (True, "https://tempo.example/trace/{trace_id}")),
    ("trace: {enabled: false, url: 'http://jaeger:16686/trace/{trace_id}'}\n",
     (False, "http://jaeger:16686/trace/{trace_id}")),
])
def test_trace_context_option(trace: str, expected: tuple[bool, str]) -> None:
    spec = parse_spec(MINIMAL + trace, "t.yaml")
    assert (spec.trace, spec.trace_url) == expected


@pytest.mark.parametrize(("trace", "field", "message"), [
    ("trace: yes please\n", "trace", "expected a mapping"),
    ("trace: {enabled: 1}\n", "trace.enabled", "expected true or false"),
    ("trace: {url: 'https://tempo.example/trace/'}\n", "trace.url", "{trace_id}"),
    ("trace: {url: 'tempo/{trace_id}'}\n", "trace.url", "expected a URL"),
    ("trace: {uri: x}\n", "trace.uri", "did you mean 'url'"),
    ("trace: true\ndefaults: {headers: {Traceparent: x}}\n", "defaults.headers.Traceparent", "trace: sets"),
    ("trace: true\nvariables: {span_id: x}\n", "variables.span_id", "holds the trace context"),
])
def test_bad_trace_options_are_located(trace: str, field: str, message: str) -> None:
    err = _error(MINIMAL + trace)
    assert err.field == field and message in str(err)


def test_an_extracted_value_may_not_take_the_trace_context_name() -> None:
    text = MINIMAL.replace("        path: /", "        path: /\n        extract: {trace_id: {header: X-Trace}}")
    assert parse_spec(text, "t.yaml").journeys[0].steps[0].extract[0].var == "trace_id"
    err = _error(text + "trace: true\n")
    assert err.field == "journeys[0].steps[0].extract.trace_id" and "trace context" in str(err)


@pytest.mark.parametrize(("value", "message"), [
    ('"a\\r\\nX-Injected: 1"', "control character '\\r'"),
    ('"a\\nb"', "control character '\\n'"),
    ('"a\\u0000b"', "control character '\\x00'"),
    ('"caf\\u00e9"', "non-ASCII character 'é'"),
    ('"\\u2603 ${v}"', "non-ASCII character"),
])
def test_header_values_that_a_tool_would_break_or_send_differently_are_refused(value: str, message: str) -> None:
    text = MINIMAL.replace("journeys:", "variables: {v: x}\njourneys:").replace(
        "        path: /", f"        path: /\n        headers:\n          X-Test: {value}")
    err = _error(text)
    assert err.field == "journeys[0].steps[0].headers.X-Test" and message in str(err)
    assert (err.line, err.column) == (11, 11)  # the header's line
    defaults = MINIMAL.replace("journeys:", f"defaults:\n  headers:\n    X-Test: {value}\njourneys:")
    assert _error(defaults).field == "defaults.headers.X-Test"


def test_header_names_must_be_http_tokens_and_plain_values_pass() -> None:
    err = _error(MINIMAL.replace("        path: /", "        path: /\n        headers: {'X Bad:': v}"))
    assert "not an HTTP token" in str(err)
    spec = parse_spec(MINIMAL.replace("        path: /", "        path: /\n        headers: {X-Ok: \"a\\tb ~!\"}"),
                      "shop.yaml")
    assert spec.journeys[0].steps[0].headers[0][0] == "X-Ok"


def test_a_header_value_from_a_spec_variable_is_checked_too() -> None:
    text = MINIMAL.replace("journeys:", "variables: {v: \"caf\\u00e9\"}\njourneys:").replace(
        "        path: /", "        path: /\n        headers:\n          X-Test: 'a ${v}'")
    err = _error(text)
    assert err.field == "journeys[0].steps[0].headers.X-Test" and "from variable 'v'" in str(err)
