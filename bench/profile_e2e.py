"""Where the end-to-end sync's CPU goes: the bench's e2e run at 0 ms latency, sampled by py-spy.

    .venv/bin/python bench/profile_e2e.py [--rate 250] [--top 30] [--raw FILE]

Runs the sync of ``run.py``'s e2e section (the same data, sandbox process and PostgreSQL server) in a
child process that py-spy samples, every thread included, and prints the functions that were on the
CPU (holding the GIL) most often: by their own time (the leaf frame of a sample) and by the time spent inside them
(any frame of a sample), each as a share of all samples. ``--raw`` keeps py-spy's collapsed stacks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import run as bench_run  # noqa: E402 - the bench's own helpers, next to this file


def sync_child(postgres: str) -> None:
    """The profiled part: the e2e sync, and nothing but it, in this process."""
    _, ids, _ = bench_run.owned_truth(bench_run.E2E_SPEC)
    with bench_run.sandbox_process(bench_run.E2E_SPEC, 0) as sandbox:
        url = bench_run.fresh_database(postgres, "profile_e2e")
        steps: dict[str, float] = {}
        seconds = bench_run.run_sync(url, sandbox, ids, "profile-e2e", cpu=steps)
        stats = sandbox.stats()
    print(json.dumps({"seconds": seconds, "requests": stats["accepted"], "cpu": steps}), flush=True)


def summarize(collapsed: Path, top: int) -> str:
    """Own time and time inside, per function, from py-spy's collapsed stacks (``frame;frame count``)."""
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame.split(" (")[0] + _where(frame) for frame in stack.split(";")]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inside[frame] += n
    lines = [f"{total} samples"]
    for title, counts in (("own time", own), ("time inside", inside)):
        lines.append(f"\n{title}:")
        lines += [f"  {n / total:6.1%}  {frame}" for frame, n in counts.most_common(top)]
    return "\n".join(lines)


def _where(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> `` (module.py)``: one function, whichever line of it ran."""
    if " (" not in frame:
        return ""
    path = frame.split(" (", 1)[1].rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else "/".join(parts[-2:])
    return f" ({short})"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--waits", action="store_true",
                        help="also sample threads that do not hold the GIL (waiting on the database or a socket)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sync_child(args.child)
        return 0
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: `pip install -e '.[bench]'` (make bench installs it)")
    from tests.integration.postgres import postgres_server

    with ExitStack() as stack, tempfile.TemporaryDirectory() as work:
        postgres = stack.enter_context(postgres_server())
        raw = args.raw or Path(work) / "stacks.txt"
        # By default only the thread holding the GIL is sampled: Python's own CPU, not its waits.
        gil = [] if args.waits else ["--gil"]
        done = subprocess.run([spy, "record", "--rate", str(args.rate), "--format", "raw", "--nonblocking", *gil,
                               "--output", str(raw), "--", sys.executable, __file__, "--child", postgres],
                              capture_output=True, text=True, check=False)
        result = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not result:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        print(result[-1])
        print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
