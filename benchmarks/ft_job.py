"""One run of the fine-tuned study in one Python process: ``mlbalance train`` then ``predict``.

Usage: ``python ft_job.py STAGES.json train ARGS... --then predict ARGS...``

Both commands go through the CLI entry point (:func:`mlbalance.cli.main`) with exactly the
arguments a user would type, in one interpreter, so torch and transformers are imported once
per run instead of twice (seconds per run on a busy machine). ``STAGES.json`` records the
seconds of each stage and, on failure, which stage failed; the exit code is the failing
command's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    stages_path, rest = Path(argv[0]), argv[1:]
    cut = rest.index("--then")
    commands = {"train": rest[:cut], "predict": rest[cut + 1 :]}
    from mlbalance.cli import main as mlbalance

    record: dict[str, object] = {}
    for stage, args in commands.items():
        t0 = time.perf_counter()
        print(f"$ mlbalance {' '.join(args)}", flush=True)
        try:
            code = mlbalance(args)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
        record[stage] = round(time.perf_counter() - t0, 2)
        if code:
            record["failed_stage"] = stage
            stages_path.write_text(json.dumps(record) + "\n", encoding="utf-8")
            return int(code)
    stages_path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
