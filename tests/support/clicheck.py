"""Check a `perfhouse ...` command line written in a file (CI examples, compose, Dockerfile) against the
real click command tree: the subcommand exists, every option is one of its options, a choice is one of
its choices. Commands and values other work is adding can be declared pending: while they are missing
from the tree they are reported as pending instead of failing; once they exist they are checked in full.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import click

from orchestrator.cli import main

# (command path, option, value) that the CLI is still growing; None matches anything.
Pending = tuple[tuple[str, ...], str | None, str | None]

_SEPARATORS = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")


@dataclass(frozen=True)
class Finding:
    argv: tuple[str, ...]
    problem: str  # "" when the command is valid
    pending: bool = False


def commands_in(shell: str) -> list[list[str]]:
    """The perfhouse invocations in a shell line (`a && perfhouse x || true`), each as its arguments."""
    found = []
    for segment in _SEPARATORS.split(shell.strip()):
        try:
            words = shlex.split(segment)
        except ValueError:
            continue
        if words and words[0].rsplit("/", 1)[-1] == "perfhouse":
            found.append(words[1:])
    return found


def check(argv: list[str], pending: tuple[Pending, ...] = ()) -> Finding:
    """Whether `perfhouse ARGV` names a real command with real options and choices."""
    group: click.Command = main
    path: list[str] = []
    words = list(argv)
    while True:
        problem = _options(group, words, path)
        if problem:
            return _finding(argv, problem, path, pending)
        if not isinstance(group, click.Group) or not words:
            return Finding(tuple(argv), "")
        name = words.pop(0)
        sub = group.commands.get(name)
        if sub is None:
            return _finding(argv, f"no command {' '.join([*path, name])!r}", [*path, name], pending)
        group = sub
        path.append(name)


def _options(command: click.Command, words: list[str], path: list[str]) -> str:
    """Consume this command's options (and its arguments, for a leaf) from `words`; a problem or ''."""
    params = {opt: p for p in command.params for opt in [*p.opts, *p.secondary_opts]}
    while words:
        word = words[0]
        if word in ("--help", "-h"):
            words.pop(0)
            continue
        if not word.startswith("-") or word == "-":
            if isinstance(command, click.Group):
                return ""
            words.pop(0)  # an argument of a leaf command
            continue
        words.pop(0)
        name, _, inline = word.partition("=")
        param = params.get(name)
        if param is None and not word.startswith("--") and word[:2] in params:  # -Jname=value: a short option's value
            name, inline = word[:2], word[2:]
            param = params[name]
        if param is None:
            return f"{' '.join(path) or 'perfhouse'}: no option {name}"
        if isinstance(param, click.Option) and (param.is_flag or param.count):
            continue
        value = inline if inline else (words.pop(0) if words else None)
        if value is None:
            return f"{name} needs a value"
        if isinstance(param.type, click.Choice) and not _chosen(param.type, value):
            return f"{name} {value!r} is not one of {', '.join(map(str, param.type.choices))}"
    return ""


def _chosen(choice: click.Choice, value: str) -> bool:
    return all(part in choice.choices for part in value.split(",")) if "," in value else value in choice.choices


def _finding(argv: list[str], problem: str, path: list[str], pending: tuple[Pending, ...]) -> Finding:
    for command, option, value in pending:
        if tuple(path[: len(command)]) != command:
            continue
        if option is None:  # the whole command is pending
            missing = problem.startswith("no command")
        elif value is None:  # an option is pending
            missing = problem.endswith(f"no option {option}")
        else:  # a value of a choice is pending
            missing = problem.startswith(f"{option} {value!r} is not one of")
        if missing:
            return Finding(tuple(argv), problem, pending=True)
    return Finding(tuple(argv), problem)
