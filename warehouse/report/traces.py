"""Trace links: where a request's W3C trace id is looked up (Jaeger, Tempo), from a URL template.

A run made from a spec with `trace.url` keeps that template in its labels; otherwise PERFHOUSE_TRACE_URL gives
one. `{trace_id}` in the template is replaced by the id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

TRACE_URL_LABEL = "perfhouse.trace_url"  # the run's label holding its spec's trace URL template
TRACE_URL_ENV = "PERFHOUSE_TRACE_URL"
PLACEHOLDER = "{trace_id}"


def url_template(labels: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> str:
    """The run's own template (from its labels), else the environment's; '' when neither gives one with
    {trace_id} in it."""
    for template in (str(labels.get(TRACE_URL_LABEL, "")), environ.get(TRACE_URL_ENV, "")):
        if PLACEHOLDER in template:
            return template
    return ""


def trace_link(template: str, trace_id: str) -> str:
    """The trace's URL, or '' without a template or an id."""
    return template.replace(PLACEHOLDER, quote(trace_id, safe="")) if template and trace_id else ""
