"""The orchestrator's errors, under perfhouse's one exception root (warehouse.errors.PerfhouseError, beside the
ExitStatus enum each error names its status from)."""

from __future__ import annotations

from warehouse.errors import ExitStatus, PerfhouseError

__all__ = [
    "ExitStatus",
    "GenerationError",
    "PerfhouseError",
    "RunAborted",
    "SpecError",
    "SpecErrors",
    "TargetUnreachableError",
    "ToolMissingError",
]


class SpecError(PerfhouseError):
    """A journey spec that cannot be loaded or is invalid; names file, line, column and field."""

    exit_status = ExitStatus.SPEC_INVALID

    def __init__(self, message: str, file: str = "", line: int = 0, column: int = 0, field: str = ""):
        self.file, self.line, self.column, self.field, self.reason = file, line, column, field, message
        where = file
        if line:
            where += f":{line}:{column}" if column else f":{line}"
        prefix = f"{where}: " if where else ""
        at = f"{field}: " if field else ""
        super().__init__(f"{prefix}{at}{message}")


class SpecErrors(SpecError):
    """Several mistakes of one spec, each a located SpecError, told together (one line each)."""

    def __init__(self, errors: list[SpecError]):
        first = errors[0]
        super().__init__(first.reason, first.file, first.line, first.column, first.field)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class GenerationError(PerfhouseError):
    """The spec asks for something a tool (or tool version) cannot express."""

    exit_status = ExitStatus.SPEC_INVALID


class ToolMissingError(PerfhouseError):
    exit_status = ExitStatus.TOOL_MISSING


class TargetUnreachableError(PerfhouseError):
    exit_status = ExitStatus.TARGET_UNREACHABLE


class RunAborted(PerfhouseError):
    exit_status = ExitStatus.ABORTED
