"""JUnit XML as GitLab and Jenkins read it: <testsuites> of <testsuite>s of <testcase>s, each passed, failed
(<failure>), errored (<error>) or skipped (<skipped>). A writer only: callers decide what a case is."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    classname: str
    time_s: float = 0.0
    failure: str | None = None  # a message: the case failed (an assertion did not hold)
    error: str | None = None  # a message: the case could not be judged (the run was aborted or incomplete)
    skipped: str | None = None  # a message: there was nothing to judge
    details: str = ""  # the element's text: what was observed
    kind: str = ""  # the failure's or error's type (e.g. Regression); default the element's name


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[Case, ...]
    timestamp: str = ""  # ISO 8601, UTC
    time_s: float = 0.0
    properties: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    hostname: str = ""

    def count(self, kind: str) -> int:
        return sum(1 for c in self.cases if getattr(c, kind) is not None)


def write(suites: list[Suite], name: str = "perfhouse") -> str:
    """The XML document of `suites`, with an XML declaration and a trailing newline."""
    root = ET.Element("testsuites", {
        "name": name,
        "tests": str(sum(len(s.cases) for s in suites)),
        "failures": str(sum(s.count("failure") for s in suites)),
        "errors": str(sum(s.count("error") for s in suites)),
        "skipped": str(sum(s.count("skipped") for s in suites)),
        "time": _seconds(sum(s.time_s for s in suites)),
    })
    for suite in suites:
        attrs = {
            "name": suite.name,
            "tests": str(len(suite.cases)),
            "failures": str(suite.count("failure")),
            "errors": str(suite.count("error")),
            "skipped": str(suite.count("skipped")),
            "time": _seconds(suite.time_s),
        }
        if suite.timestamp:
            attrs["timestamp"] = suite.timestamp
        if suite.hostname:
            attrs["hostname"] = suite.hostname
        element = ET.SubElement(root, "testsuite", attrs)
        if suite.properties:
            props = ET.SubElement(element, "properties")
            for key, value in suite.properties:
                ET.SubElement(props, "property", {"name": key, "value": value})
        for case in suite.cases:
            tc = ET.SubElement(element, "testcase",
                               {"name": case.name, "classname": case.classname, "time": _seconds(case.time_s)})
            for kind in ("failure", "error", "skipped"):
                message = getattr(case, kind)
                if message is not None:
                    attrs = {"message": message} if kind == "skipped" else {"message": message,
                                                                             "type": case.kind or kind}
                    child = ET.SubElement(tc, kind, attrs)
                    child.text = case.details or None
            if case.details and case.failure is None and case.error is None and case.skipped is None:
                ET.SubElement(tc, "system-out").text = case.details
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"
