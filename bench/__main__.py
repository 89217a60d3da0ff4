"""`python -m bench [--label L]` (= `make bench`): every benchmark, one after the other.

BENCH_ROUNDS (empty: each script's default) sets the rounds of all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPTS = ("namespaces", "provision", "environments", "worker_memory")


def main() -> int:
    if not os.environ.get("BENCH_ROUNDS"):
        os.environ.pop("BENCH_ROUNDS", None)
    failed = []
    for name in SCRIPTS:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}", *sys.argv[1:]]).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
