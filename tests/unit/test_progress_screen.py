"""On a terminal the progress line is redrawn in place; elsewhere it prints plain lines."""

from __future__ import annotations

import io
import time
from pathlib import Path

from orchestrator.progress import Progress
from orchestrator.tools import Output
from orchestrator.tools.k6 import K6_JSON


def test_a_terminal_gets_one_line_redrawn_and_no_echoed_lines(tmp_path: Path) -> None:
    out = tmp_path / "k6.json"
    out.write_text("")
    screen, echoed = io.StringIO(), []
    progress = Progress("k6", [Output(out, K6_JSON)], 10, 0.05, echoed.append, screen)
    progress.start()
    time.sleep(0.3)
    progress.stop()
    drawn = screen.getvalue()
    assert drawn.count("\r\x1b[K") >= 2 and "k6: " in drawn and "\n" not in drawn
    assert echoed == []


def test_without_a_terminal_lines_are_echoed(tmp_path: Path) -> None:
    out = tmp_path / "k6.json"
    out.write_text("")
    echoed: list[str] = []
    progress = Progress("k6", [Output(out, K6_JSON)], 10, 0.05, echoed.append)
    progress.start()
    time.sleep(0.3)
    progress.stop()
    assert echoed and all(line.startswith("k6: ") for line in echoed)
