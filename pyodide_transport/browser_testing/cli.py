"""``pyodide-transport``: the installed command for testing an MCP server from a real browser.

::

    pyodide-transport check URL [--runtime chromium|node|cpython] [--format text|json|junit] [--output FILE]
                                [--origin ORIGIN] [--pyodide DIR] [--header 'NAME: VALUE' ...]
    pyodide-transport runtime                # fetch and assemble the offline Pyodide runtime now; print its folder

``check`` is :func:`pyodide_transport.check.main` with the transport half in a Chromium page by
default; its exit status is the check's (0 nothing blocks a browser client, 1 something does,
2 the check could not run as asked). ``runtime`` is for a CI step before the network goes away,
or a cache warm-up: it exits 0 with the folder on stdout, 2 when fetching failed.
"""

from __future__ import annotations

import argparse
import sys

from ..check import main as check_main
from ..check_report import EXIT_OK, EXIT_USAGE
from .runtime import RuntimeSetupError, cache_root, ensure_runtime

__all__ = ["USAGE", "main"]

_PROG = "pyodide-transport"
USAGE = """\
usage: pyodide-transport check URL [--runtime chromium|node|cpython] [--format text|json|junit] [--output FILE]
                                  [--origin ORIGIN] [--pyodide DIR] [--header 'NAME: VALUE' ...]
       pyodide-transport runtime
       pyodide-transport COMMAND --help"""


def _runtime(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_PROG} runtime",
        description="Fetch (once) and assemble the offline Pyodide runtime the browser tests boot from; print it.",
    )
    parser.parse_args(argv)
    try:
        folder = ensure_runtime()
    except RuntimeSetupError as exc:
        print(f"cannot prepare the runtime in {cache_root()}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(folder)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    commands = {
        "check": lambda rest: check_main(rest, prog=f"{_PROG} check", default_runtime="chromium"),
        "runtime": _runtime,
    }
    if not args or args[0] in ("-h", "--help") or args[0] not in commands:
        stream = sys.stdout if args and args[0] in ("-h", "--help") else sys.stderr
        print(USAGE, file=stream)
        if args and args[0] not in ("-h", "--help"):
            print(f"{_PROG}: unknown command {args[0]!r}", file=sys.stderr)
        return EXIT_OK if stream is sys.stdout else EXIT_USAGE
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
