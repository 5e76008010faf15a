"""A tool's version is asked of the program once per build of it, and the kept answer can never be a wrong one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator.tool_versions import cache_path, cached_version


class Asker:
    def __init__(self, answer: str = "1.1.0") -> None:
        self.answer, self.asked = answer, 0

    def __call__(self, binary: str) -> str:
        self.asked += 1
        return self.answer


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PERFHOUSE_NO_VERSION_CACHE", raising=False)
    return tmp_path / "cache"


def program(path: Path, content: bytes = b"\x7fELF tool build 1") -> str:
    path.write_bytes(content)
    path.chmod(0o755)
    return str(path)


def test_the_same_program_is_asked_once_and_the_cache_is_its_owners_alone(tmp_path: Path) -> None:
    k6, ask = program(tmp_path / "k6"), Asker()
    assert cached_version("k6", k6, ask) == "1.1.0"
    assert cached_version("k6", k6, ask) == "1.1.0"
    assert ask.asked == 1
    assert stat.S_IMODE(cache_path().stat().st_mode) == 0o600


def test_a_program_replaced_in_place_is_asked_again(tmp_path: Path) -> None:
    k6 = program(tmp_path / "k6")
    cached_version("k6", k6, Asker("1.0.0"))
    program(tmp_path / "k6", b"\x7fELF tool build 2, a longer one")
    assert cached_version("k6", k6, Asker("1.1.0")) == "1.1.0"


def test_a_link_to_another_build_is_asked_again(tmp_path: Path) -> None:
    old, new = program(tmp_path / "k6-1.0"), program(tmp_path / "k6-1.1", b"\x7fELF other")
    link = tmp_path / "k6"
    link.symlink_to(old)
    cached_version("k6", str(link), Asker("1.0.0"))
    link.unlink()
    link.symlink_to(new)
    assert cached_version("k6", str(link), Asker("1.1.0")) == "1.1.0"


def test_a_wrapper_script_is_asked_again_when_the_jar_it_starts_changes(tmp_path: Path) -> None:
    jar = tmp_path / "ApacheJMeter.jar"
    jar.write_bytes(b"jar 5.5")
    jmeter = program(tmp_path / "jmeter", f"#!/bin/sh\nexec java -cp {jar} org.apache.jmeter.NewDriver \"$@\"\n".encode())
    cached_version("jmeter", jmeter, Asker("5.5"))
    assert cached_version("jmeter", jmeter, Asker("5.5")) == "5.5"
    jar.write_bytes(b"jar 5.6.3, upgraded")
    assert cached_version("jmeter", jmeter, Asker("5.6.3")) == "5.6.3"


def test_the_same_program_under_another_tool_name_is_not_confused(tmp_path: Path) -> None:
    binary = program(tmp_path / "tool")
    cached_version("k6", binary, Asker("1.1.0"))
    assert cached_version("locust", binary, Asker("2.47.0")) == "2.47.0"


@pytest.mark.parametrize("answer", ["unknown", "", "error: cannot start", "1.0 with spaces"])
def test_an_answer_that_is_not_a_version_is_never_kept(tmp_path: Path, answer: str) -> None:
    k6 = program(tmp_path / "k6")
    assert cached_version("k6", k6, Asker(answer)) == answer
    ask = Asker(answer)
    cached_version("k6", k6, ask)
    assert ask.asked == 1


@pytest.mark.parametrize("content", [
    b"not json", b"[]", b'{"format": 2, "versions": {}}', b'{"format": 1, "versions": []}', b"\xff\xfe",
])
def test_a_damaged_cache_is_ignored_and_written_anew(tmp_path: Path, content: bytes) -> None:
    k6 = program(tmp_path / "k6")
    cache_path().parent.mkdir(parents=True)
    cache_path().write_bytes(content)
    ask = Asker()
    assert cached_version("k6", k6, ask) == "1.1.0" and ask.asked == 1
    assert json.loads(cache_path().read_text())["format"] == 1
    assert cached_version("k6", k6, ask) == "1.1.0" and ask.asked == 1


def test_a_planted_version_that_is_not_one_is_not_believed(tmp_path: Path) -> None:
    k6 = program(tmp_path / "k6")
    cached_version("k6", k6, Asker())
    doc = json.loads(cache_path().read_text())
    doc["versions"] = {key: "1.1.0; rm -rf /" for key in doc["versions"]}
    cache_path().write_text(json.dumps(doc))
    assert cached_version("k6", k6, Asker("1.1.0")) == "1.1.0"


def test_a_cache_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    k6 = program(tmp_path / "k6")
    cached_version("k6", k6, Asker("1.1.0"))
    elsewhere = tmp_path / "elsewhere.json"
    os.replace(cache_path(), elsewhere)
    cache_path().symlink_to(elsewhere)
    ask = Asker("1.1.0")
    cached_version("k6", k6, ask)
    assert ask.asked == 1


def test_no_cache_when_turned_off_or_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    k6 = program(tmp_path / "k6")
    monkeypatch.setenv("PERFHOUSE_NO_VERSION_CACHE", "1")
    ask = Asker()
    cached_version("k6", k6, ask)
    cached_version("k6", k6, ask)
    assert ask.asked == 2 and not cache_path().exists()
    monkeypatch.delenv("PERFHOUSE_NO_VERSION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "k6"))  # a file: no directory can be made there
    assert cached_version("k6", k6, Asker()) == "1.1.0"


def test_a_missing_program_is_simply_asked(tmp_path: Path) -> None:
    ask = Asker("1.1.0")
    assert cached_version("k6", str(tmp_path / "absent"), ask) == "1.1.0" and ask.asked == 1
    assert not cache_path().exists()
