"""``mlbalance verify``: check a shard folder against its manifest."""

from __future__ import annotations

import argparse
import sys

from mlbalance.cli._options import add_json_argument, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check resampled shards against their __mlbalance__/manifest.json",
        description="Check every shard listed in DIR/__mlbalance__/manifest.json (DIR/manifest.json in "
        "folders written by mlbalance 0.1): a plain file name inside DIR, present, same size, "
        "sha256 and row count, the manifest's label vocabulary, no unlisted shard, and the "
        "label counts read back equal to the manifest's. Nothing outside DIR is opened. "
        "Exit 0 when all holds, 1 otherwise.",
    )
    p.add_argument("folder", metavar="DIR", help="a folder written by `mlbalance resample`")
    p.add_argument(
        "--quick",
        action="store_true",
        help="skip re-reading the labels (hashes, sizes and row counts only)",
    )
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.io.shards import verify_shards

    report = verify_shards(args.folder, check_labels=not args.quick)
    stream = sys.stderr if args.json == "-" else sys.stdout
    if report["ok"]:
        print(
            f"{args.folder}: OK ({report['shards']} shard(s), {report['rows']:,} rows, "
            f"method {report['method']})",
            file=stream,
        )
    else:
        print(f"{args.folder}: FAILED, {len(report['problems'])} problem(s):", file=stream)
        for line in report["problems"][:20]:
            print(f"  {line}", file=stream)
    emit_json(report, args.json)
    return 0 if report["ok"] else 1
