"""The long reliability runs: fuzzing at 10,000 examples per target, load at full size, more fault trials.

Usage (``python build.py stress`` runs this with the project's virtualenv)::

    python stress/run_stress.py [--examples 10000] [--sessions 500] [--calls 20] [--trials 500] [pytest args]

It runs pytest over ``tests/fuzz``, ``tests/load`` and the SSE cut faults with the
stress settings in the environment; the figures (examples, sessions, trials, memory)
are printed in pytest's closing "figures" section. Standard library only; everything
binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["tests/fuzz", "tests/load", "tests/faults/test_sse_cut_faults.py"]


def main(argv: list[str] | None = None) -> int:
    """Run the stress suite; return pytest's exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="hypothesis examples per fuzz target")
    parser.add_argument("--sessions", type=int, default=500, help="concurrent sessions in the load tests")
    parser.add_argument("--calls", type=int, default=20, help="calls per session in the load tests")
    parser.add_argument("--trials", type=int, default=500, help="SSE cut trials per way of cutting")
    args, pytest_args = parser.parse_known_args(argv)
    env = {
        **os.environ,
        "PT_FUZZ_PROFILE": "stress",
        "PT_FUZZ_EXAMPLES": str(args.examples),
        "PT_LOAD_SESSIONS": str(args.sessions),
        "PT_LOAD_CALLS": str(args.calls),
        "PT_LOAD_TRACED": f"{args.sessions}x{args.calls}",
        "PT_FAULT_TRIALS": str(args.trials),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "timeout=3600", *TARGETS, *pytest_args]
    print("[stress] $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main())
