"""The browser-compatibility report of :mod:`pyodide_transport.check` in the formats CI tools read.

Pure (no I/O): the checks in, a string out.

* ``text``: one line per check with its mark, then the verdict (for people and CI logs).
* ``json``: the list of checks, each ``{"name", "status", "detail"}`` (the shape ``--json`` always printed).
* ``junit``: JUnit XML, one ``<testsuite>`` for the URL and one ``<testcase>`` per check: a ``fail``
  is a ``<failure>``, a ``skip`` is ``<skipped>``; ``warn`` and ``info`` pass with their detail in
  ``<system-out>`` (CI test tabs show them without failing the build).

Exit codes of the command (:data:`EXIT_OK`, :data:`EXIT_BLOCKING`, :data:`EXIT_USAGE`): 0 when no
check is blocking, 1 when at least one is, 2 when the check could not run as asked (bad arguments,
no Pyodide in ``--pyodide DIR``, an output file that cannot be written).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Final, Literal, TypeAlias

__all__ = ["EXIT_BLOCKING", "EXIT_OK", "EXIT_USAGE", "FORMATS", "Check", "ReportFormat", "render"]

EXIT_OK: Final = 0
"""No check keeps a browser client from using the server."""

EXIT_BLOCKING: Final = 1
"""At least one check failed: a browser client cannot fully use the server."""

EXIT_USAGE: Final = 2
"""The check could not run as asked (arguments, ``--pyodide`` folder, output file)."""

ReportFormat: TypeAlias = Literal["text", "json", "junit"]
FORMATS: Final[tuple[ReportFormat, ...]] = ("text", "json", "junit")
"""What ``--format`` takes."""

_MARKS: Final = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "info": "INFO", "skip": "SKIP"}


@dataclass
class Check:
    """One line of the report.

    Attributes:
        name: What was checked.
        status: ``"pass"``, ``"fail"``, ``"warn"`` (not fatal), ``"info"`` or ``"skip"``.
        detail: What was seen, and the fix when it failed.
    """

    name: str
    status: str
    detail: str = ""

    @property
    def fatal(self) -> bool:
        """Whether this check keeps a browser client from using the server."""
        return self.status == "fail"


def render(url: str, checks: list[Check], fmt: ReportFormat = "text") -> str:
    """The report of ``checks`` against ``url`` in ``fmt``."""
    if fmt == "json":
        return json.dumps([asdict(c) for c in checks], indent=2)
    if fmt == "junit":
        return _junit(url, checks)
    return _text(url, checks)


def _text(url: str, checks: list[Check]) -> str:
    lines = [f"Browser compatibility of {url}", ""]
    lines += [
        f"  [{_MARKS.get(c.status, c.status.upper())}] {c.name}" + (f": {c.detail}" if c.detail else "") for c in checks
    ]
    failed = [c for c in checks if c.fatal]
    lines += [
        "",
        "A browser client can fully use this server." if not failed else f"{len(failed)} blocking problem(s).",
    ]
    return "\n".join(lines)


def _junit(url: str, checks: list[Check]) -> str:
    suites = ET.Element("testsuites", name="pyodide-transport check")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"browser compatibility of {url}",
        tests=str(len(checks)),
        failures=str(sum(c.fatal for c in checks)),
        skipped=str(sum(c.status == "skip" for c in checks)),
        errors="0",
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname="pyodide_transport.check", name=check.name)
        if check.fatal:
            failure = ET.SubElement(case, "failure", message=check.detail or check.name, type="blocking")
            failure.text = check.detail
        elif check.status == "skip":
            ET.SubElement(case, "skipped", message=check.detail)
        elif check.detail:
            ET.SubElement(case, "system-out").text = f"{_MARKS.get(check.status, check.status)}: {check.detail}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode")
