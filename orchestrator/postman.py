"""Postman import: a v2.1 collection becomes a starter spec (folders as journeys, requests as steps).

What maps: methods, URLs with their query, headers, raw/JSON/urlencoded bodies, collection variables,
bearer and basic auth of the collection, a folder or a request, status assertions
(`pm.response.to.have.status(N)`, `pm.expect(pm.response.code).to.eql(N)`, `pm.response.to.be.ok`), alone or
as the whole of a `pm.test(NAME, ...)` (then a check named NAME), as status checks, and `pm.collectionVariables/environment/globals.set(NAME, pm.response.json()...)` as a
JSONPath extraction used by later requests. Whatever does not map is listed as a comment in the spec
and returned as a warning; an odd collection never stops the import.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrator.errors import SpecError

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_STATUS = re.compile(r"^pm\.response\.to\.have\.status\(\s*(\d{3})\s*\)$"
                     r"|^pm\.expect\(\s*pm\.response\.code\s*\)\.to\.(?:be\.)?(?:eql|equal|equals|eq)\(\s*(\d{3})\s*\)$"
                     r"|^pm\.response\.to\.(?:be|have)\.(ok)$")  # `ok` is status 200 in Postman's assertions
# pm.test("name", function () { BODY }) or pm.test("name", () => { BODY })
_TEST = re.compile(r"pm\.test\(\s*(['\"`])((?:(?!\1).)*)\1\s*,\s*(?:function\s*\(\s*\)|\(\s*\)\s*=>)\s*\{"
                   r"(?P<body>[^{}]*)\}\s*\)\s*;?", re.S)
_SET = re.compile(r"^pm\.(?:collectionVariables|environment|globals|variables)\.set\(\s*(['\"])([A-Za-z_][\w]*)\1\s*,"
                  r"\s*(.+?)\s*\);?$")
_JSON_ALIAS = re.compile(r"^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*pm\.response\.json\(\)\s*;?$")
_MEMBERS = re.compile(r"\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[(['\"])([^'\"]*)\3\]")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_IGNORED = re.compile(r"^(//.*|[{}();]*)$")  # comments and lone punctuation of a script


@dataclass
class _Import:
    file: str
    variables: dict[str, str]
    services: dict[str, str] = field(default_factory=dict)  # base URL -> service name
    warnings: list[str] = field(default_factory=list)

    def warn(self, where: str, what: str) -> None:
        self.warnings.append(f"{where}: {what}")

    def template(self, text: Any, known: set[str], where: str) -> str:
        """Postman text as spec text: {{name}} becomes ${name} (or ${env:name} when nothing defines it)."""
        out, pos = [], 0
        source = str(text)
        for m in _VAR.finditer(source):
            out.append(source[pos:m.start()].replace("$", "$$"))
            name = m.group(1)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.warn(where, f"{{{{{name}}}}} is not a variable perfhouse can read (dynamic or oddly named); "
                                 "kept as literal text")
                out.append(m.group(0).replace("$", "$$"))
            elif name in known or name in self.variables:
                out.append(f"${{{name}}}")
            else:
                self.warn(where, f"{{{{{name}}}}} is no collection variable and no earlier request sets it: read "
                                 f"from the environment variable {name} at run time")
                out.append(f"${{env:{name}}}")
            pos = m.end()
        out.append(source[pos:].replace("$", "$$"))
        return "".join(out)


def _identifier(text: str, taken: set[str], fallback: str) -> str:
    base = _NAME.sub("_", text.strip()).strip("_.-") or fallback
    if not re.match(r"[A-Za-z0-9_]", base):
        base = f"_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _kv(items: Any) -> list[tuple[str, Any]]:
    """Postman key/value lists (query, header, urlencoded, variable), without disabled entries."""
    if not isinstance(items, list):
        return []
    return [(str(i.get("key", "")), i.get("value", "")) for i in items
            if isinstance(i, dict) and not i.get("disabled") and i.get("key")]


def _auth_header(imp: _Import, auth: Any, known: set[str], where: str) -> tuple[str, str] | None:
    if not isinstance(auth, dict) or auth.get("type") in (None, "noauth"):
        return None
    kind = auth.get("type")
    params = dict(_kv(auth.get(kind)))
    if kind == "bearer":
        return "Authorization", "Bearer " + imp.template(params.get("token", ""), known, where)
    if kind == "basic":
        user, password = str(params.get("username", "")), str(params.get("password", ""))
        if _VAR.search(user + password):
            imp.warn(where, "basic auth built from variables cannot be encoded before the run; set an "
                            "Authorization header by hand")
            return None
        return "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    imp.warn(where, f"{kind} auth is not imported")
    return None


def _jsonpath(expr: str, alias: str) -> str | None:
    """pm.response.json().a.b[0] (or ALIAS.a.b[0]) as $.a.b[0]; None for anything else."""
    for head in ("pm.response.json()", alias):
        if head and expr.startswith(head):
            rest, keys, pos = expr[len(head):], [], 0
            for m in _MEMBERS.finditer(rest):
                if m.start() != pos:
                    return None
                name, index, _, quoted = m.groups()
                keys.append(f".{name}" if name else f"[{index}]" if index is not None else f"['{quoted}']")
                pos = m.end()
            return "$" + "".join(keys) if keys and pos == len(rest) else None
    return None


def _status(statement: str) -> int | None:
    """The status a single assertion statement expects, or None when it is something else."""
    m = _STATUS.match(statement.strip().rstrip(";").strip())
    if not m:
        return None
    return 200 if m.group(3) else int(m.group(1) or m.group(2))


def _test_checks(name: str, body: str) -> list[dict[str, Any]] | None:
    """The status checks of a pm.test whose body is nothing but status assertions; None otherwise."""
    statements = [s.strip() for s in re.split(r"[;\n]", body) if s.strip() and not _IGNORED.match(s.strip())]
    statuses = [_status(s) for s in statements]
    if not statuses or any(s is None for s in statuses):
        return None
    label = " ".join(name.split())[:120]
    checks: list[dict[str, Any]] = []
    for status in statuses:
        check: dict[str, Any] = {"status": status}
        if label:  # the check is reported under the test's name (again: numbered)
            check["name"] = label if not checks else f"{label} ({len(checks) + 1})"
        checks.append(check)
    return checks


def _tests(imp: _Import, events: Any, where: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Status checks and extractions from a request's test script; other lines become warnings."""
    checks: list[dict[str, Any]] = []
    extract: dict[str, Any] = {}
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        lines = (event.get("script") or {}).get("exec") or []
        lines = [lines] if isinstance(lines, str) else lines
        if event.get("listen") != "test":
            if any(str(line).strip() for line in lines):
                imp.warn(where, f"a {event.get('listen', 'script')} script is not imported")
            continue
        script, rest, pos = "\n".join(str(line) for line in lines), [], 0
        for test in _TEST.finditer(script):  # a test of status assertions alone becomes checks named by it
            found = _test_checks(test.group(2), test.group("body"))
            if found is None:
                continue
            rest.append(script[pos:test.start()])
            checks += [c for c in found if c not in checks]
            pos = test.end()
        rest.append(script[pos:])
        alias = ""
        for raw in "".join(rest).splitlines():
            line = raw.strip()
            if (status := _status(line)) is not None:
                checks.append({"status": status})
            elif m := _JSON_ALIAS.match(line):
                alias = m.group(1)
            elif (m := _SET.match(line)) and (path := _jsonpath(m.group(3), alias)):
                extract[m.group(2)] = {"jsonpath": path}
            elif line and not _IGNORED.match(line):
                imp.warn(where, f"test script line not imported: {line[:120]}")
    unique: list[dict[str, Any]] = []
    labels: set[str] = set()
    for check in checks:  # a step's checks are reported under distinct labels
        label = check.get("name") or f"status is {check['status']}"
        if label in labels:
            if check in unique:
                continue
            n = 2
            while f"{label} ({n})" in labels:
                n += 1
            check, label = {**check, "name": f"{label} ({n})"}, f"{label} ({n})"
        labels.add(label)
        unique.append(check)
    return unique, extract


def _url(imp: _Import, request: dict[str, Any], known: set[str], where: str) -> tuple[str, str, dict[str, str]]:
    """(service, path, query) of a request's URL; a {{variable}} host names a service of its own."""
    url = request.get("url", "")
    raw = url.get("raw", "") if isinstance(url, dict) else str(url)
    query_items = _kv(url.get("query")) if isinstance(url, dict) else []
    raw = str(raw)
    head = re.match(r"^\{\{\s*([A-Za-z_]\w*)\s*\}\}", raw)
    if head and re.match(r"https?://", imp.variables.get(head.group(1), "")):
        base, rest = imp.variables[head.group(1)].rstrip("/"), raw[head.end():]
        name = re.sub(r"\W", "_", head.group(1))
    else:
        parts = urlsplit(raw if re.match(r"[a-z][a-z0-9+.-]*://", raw, re.I) else f"http://{raw}")
        if head or not parts.netloc:
            imp.warn(where, f"the URL {raw!r} names no base URL perfhouse can read; its service points at "
                            "http://localhost: set it in services")
            base, rest, name = "http://localhost", (raw[head.end():] if head else raw), "api"
        else:
            base, name = f"{parts.scheme}://{parts.netloc}", parts.hostname or "api"
            rest = raw[len(base):] if raw.startswith(base) else parts.path + (f"?{parts.query}" if parts.query else "")
    path = rest.split("#")[0].split("?")[0] or "/"
    if not query_items and "?" in rest:
        query_items = [(k, v) for k, _, v in (pair.partition("=") for pair in rest.split("?", 1)[1].split("&")) if k]
    if base not in imp.services:
        label = re.sub(r"[^A-Za-z0-9_]", "_", name.split(".")[0]) or "api"
        service, n = label, 2
        while service in imp.services.values():
            service, n = f"{label}_{n}", n + 1
        imp.services[base] = service
    query = {str(k): imp.template("" if v is None else v, known, f"{where} query {k}") for k, v in query_items}
    path = imp.template(path if path.startswith("/") else "/" + path, known, f"{where} path")
    return imp.services[base], path, query


def _body(imp: _Import, body: Any, known: set[str], where: str) -> dict[str, Any] | None:
    if not isinstance(body, dict) or not body.get("mode"):
        return None
    mode = body["mode"]
    if mode == "raw":
        text = str(body.get("raw", ""))
        language = ((body.get("options") or {}).get("raw") or {}).get("language", "")
        if language == "json":
            try:
                return {"json": _json_templates(imp, json.loads(text), known, where)}
            except ValueError:
                return {"raw": imp.template(text, known, where), "content_type": "application/json"}
        ctype = {"xml": "application/xml", "html": "text/html", "javascript": "application/javascript"}.get(
            language, "text/plain")
        return {"raw": imp.template(text, known, where), "content_type": ctype}
    if mode == "urlencoded":
        return {"form": {k: imp.template("" if v is None else v, known, where)
                         for k, v in _kv(body.get("urlencoded"))}}
    imp.warn(where, f"a {mode} body is not imported")
    return None


def _json_templates(imp: _Import, value: Any, known: set[str], where: str) -> Any:
    if isinstance(value, str):
        return imp.template(value, known, where)
    if isinstance(value, dict):
        return {k: _json_templates(imp, v, known, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_templates(imp, v, known, where) for v in value]
    return value


def _inherit(own: Any, parent: Any) -> Any:
    """An item's auth: its own, else (none given, or `inherit`) its parent's."""
    return own if isinstance(own, dict) and own.get("type") not in (None, "inherit") else parent


def _requests(items: Any, trail: tuple[str, ...], auth: Any) -> list[tuple[tuple[str, ...], dict[str, Any], Any]]:
    """Every request under `items`, in order, with its folder trail and the auth it inherits."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        own = _inherit(item.get("auth"), auth)
        if "item" in item:
            out += _requests(item["item"], (*trail, str(item.get("name", "folder"))), own)
        elif isinstance(item.get("request"), dict | str):
            out.append(((*trail, str(item.get("name", "request"))), item, own))
    return out


def postman_to_spec(collection: dict[str, Any], name: str, file: str = "<collection>") -> tuple[dict[str, Any],
                                                                                               list[str]]:
    """The spec document for a Postman v2.1 collection, and the warnings about what was left out."""
    if not isinstance(collection, dict) or not isinstance(collection.get("item"), list):
        raise SpecError("not a Postman collection: expected info and item", file)
    schema = str((collection.get("info") or {}).get("schema", ""))
    imp = _Import(file, {k: str(v) for k, v in _kv(collection.get("variable"))})
    if schema and "v2.1" not in schema and "v2.0" not in schema:
        imp.warn("collection", f"schema {schema} is not v2.1: read as if it were")
    journeys: dict[str, dict[str, Any]] = {}
    top = str((collection.get("info") or {}).get("name") or name)
    taken_journeys: set[str] = set()
    known_by_journey: dict[str, set[str]] = {}
    steps_taken: dict[str, set[str]] = {}
    for trail, item, auth in _requests(collection["item"], (), collection.get("auth")):
        folder = trail[0] if len(trail) > 1 else top
        if folder not in journeys:
            jname = _identifier(folder, taken_journeys, "journey")
            journeys[folder] = {"name": jname, **({"label": folder.strip()} if folder.strip() != jname else {}),
                                "steps": []}
            known_by_journey[folder], steps_taken[folder] = set(), set()
        journey, known = journeys[folder], known_by_journey[folder]
        where = " / ".join(trail)
        request = item["request"] if isinstance(item["request"], dict) else {"url": item["request"]}
        service, path, query = _url(imp, request, known, where)
        sname = _identifier(trail[-1], steps_taken[folder], "request")
        step: dict[str, Any] = {"name": sname}
        if trail[-1].strip() != sname and trail[-1].strip():
            step["label"] = trail[-1].strip()
        if len(trail) > 2:
            step["group"] = _identifier(trail[1], set(), "group")
        step.update(service=service, method=str(request.get("method", "GET")).upper(), path=path)
        if query:
            step["query"] = query
        headers = {str(k): imp.template(v, known, f"{where} header {k}") for k, v in _kv(request.get("header"))
                   if str(k).lower() != "content-type"}
        declared = {str(k).lower(): str(v) for k, v in _kv(request.get("header"))}
        authorization = _auth_header(imp, _inherit(request.get("auth"), auth), known, where)
        if authorization and "authorization" not in {h.lower() for h in headers}:
            headers[authorization[0]] = authorization[1]
        if headers:
            step["headers"] = headers
        body = _body(imp, request.get("body"), known, where)
        if body is not None:
            if "content-type" in declared and "form" not in body:
                body["content_type"] = declared["content-type"]
            step["body"] = body
        checks, extract = _tests(imp, item.get("event"), where)
        if checks:
            step["checks"] = checks
            failing = sorted({c["status"] for c in checks if c["status"] >= 400})
            if failing:  # the collection's tests expect these: not request errors
                step["expected_statuses"] = failing
        if extract:
            step["extract"] = extract
            known.update(extract)
        journey["steps"].append(step)
    if not journeys:
        raise SpecError("the collection holds no requests", file)
    services = {svc: base for base, svc in imp.services.items()}
    variables = {k: v.replace("$", "$$") for k, v in imp.variables.items()
                 if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) and not _VAR.search(v)}
    for k, v in imp.variables.items():
        if _VAR.search(v):
            imp.warn(f"variable {k}", "a value built from other variables is not imported")
    doc: dict[str, Any] = {"name": _identifier(name, set(), "imported"), "services": services}
    if variables:
        doc["variables"] = variables
    doc["journeys"] = list(journeys.values())
    doc["profiles"] = {"smoke": {"preset": "smoke"}, "ci": {"executor": "constant_vus", "vus": 5, "duration": "1m"}}
    doc["slos"] = [{"metric": "p95", "threshold": "1s"}, {"metric": "error_rate", "threshold": "1%"}]
    return doc, imp.warnings


def import_postman(path: Path, name: str) -> tuple[str, list[str]]:
    """The YAML text of a starter spec for the collection at `path`, and the import's warnings."""
    try:
        collection = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the collection: {exc}", str(path)) from None
    doc, warnings = postman_to_spec(collection, name, str(path))
    header = (f"# Journey spec imported by perfhouse from the Postman collection {Path(path).name}.\n"
              "# Review it: check the services' base URLs, move secrets to ${env:NAME}, and adjust think times,\n"
              "# checks, profiles and SLOs.\n")
    if warnings:
        header += "# Not imported:\n" + "".join(f"#   {' '.join(w.split())}\n" for w in warnings)
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110), warnings
