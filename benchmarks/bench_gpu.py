"""GPU training throughput: ``mlbalance train`` against a plain Hugging Face Trainer, on one GPU.

Same model, data, batch size, max length, precision (bf16 autocast) and optimizer steps; each
(case, variant) runs in its own process, and the variants of a case run interleaved
(hf, mlb, hf, mlb, ...) so a slow moment of the machine hits both alike.

Timing is the same for every variant: a global optimizer step hook (``torch.optim``'s
``register_optimizer_step_post_hook``) synchronises the GPU and reads the clock after
``--warmup`` steps and again after the last step; rows/s = measured steps x batch / elapsed.
Start-up, tokenising beforehand (HF) and evaluation are outside the window; mlbalance's
tokenising on the fly is inside it (it is part of its loop).

Cases (``--cases``):
* ``minilm-bN``: all-MiniLM-L6-v2 (``--model``) on GoEmotions train (``--data``), batch N,
  max length 128 (GoEmotions texts are short: ~20 tokens);
* ``bert-bN``: a BERT-base-size model (12 layers, hidden 768, random weights from a
  ``BertConfig``; the MiniLM tokenizer) on long texts (GoEmotions texts joined to >= 128
  tokens), batch N, max length 128: every row is 128 tokens, so model FLOP utilisation (MFU)
  is well defined.

Variants (``--variants``):
* ``hf``: ``transformers.Trainer`` on pre-tokenised rows, ``DataCollatorWithPadding``,
  ``problem_type="multi_label_classification"``, bf16, its default fused AdamW;
* ``mlb``: ``mlbalance.train.train`` (the library call behind ``mlbalance train``) with the
  same settings, plus ``--mlb-options KEY=VALUE ...`` (e.g. ``group_by_length=true``);
* ``raw``: a minimal hand-written loop (pre-tokenised, pinned, no per-step sync, fused AdamW):
  what an eager loop can reach; ``raw-compile`` / ``raw-graphs``: the same under
  ``torch.compile`` (default mode / ``reduce-overhead``, i.e. CUDA graphs), lengths padded to
  multiples of 16.

MFU counts the model's useful FLOPs (real tokens, not padding): per row
``6 * N * T + 12 * L * H * T^2`` (N = non-embedding parameters, L layers, H hidden size,
T tokens; Kaplan et al. 2020 / PaLM appendix B), over the peak dense bf16 rate ``--peak-tflops``
(default 989, the H100/H200 SXM datasheet figure; this workplace measured ~790 on random data).

Run on the GPU machine (see BENCHMARKS.md for the figures)::

    python3 benchmarks/bench_gpu.py --model .device/minilm --data .device/goemotions \\
        --out $OUT/gpu --cases minilm-b32,bert-b64 --variants hf,mlb --repeats 2

On CPU with a tiny model it checks itself (``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLBALANCE_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- data
def read_goemotions(folder: Path, split: str) -> tuple[list[str], list[list[int]], list[str]]:
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    texts, labels = [], []
    with open(folder / f"{split}.tsv", encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            texts.append(parts[0])
            labels.append([int(x) for x in parts[1].split(",") if x])
    return texts, labels, names


def long_texts(
    texts: list[str], labels: list[list[int]], min_chars: int, n_rows: int, seed: int = 0
) -> tuple[list[str], list[list[int]]]:
    """*n_rows* rows, each random texts joined to >= *min_chars* characters (first one's labels)."""
    import random

    rng = random.Random(seed)
    out_t, out_l = [], []
    for _ in range(n_rows):
        first = rng.randrange(len(texts))
        parts, size = [texts[first]], len(texts[first])
        while size < min_chars:
            t = texts[rng.randrange(len(texts))]
            parts.append(t)
            size += len(t) + 1
        out_t.append(" ".join(parts))
        out_l.append(labels[first])
    return out_t, out_l


def write_tsv(path: Path, texts: list[str], labels: list[list[int]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i, (t, y) in enumerate(zip(texts, labels, strict=True)):
            clean = t.replace("\t", " ").replace("\n", " ")
            fh.write(f"{clean}\t{','.join(map(str, y))}\tr{i}\n")


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Data files and model folders every worker reads."""
    texts, labels, names = read_goemotions(Path(args.data), "train")
    dev_t, dev_l, _ = read_goemotions(Path(args.data), "dev")
    (work / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    write_tsv(work / "short_train.tsv", texts, labels)
    write_tsv(work / "short_val.tsv", dev_t[:1024], dev_l[:1024])
    lt, ll = long_texts(texts, labels, args.long_chars, n_rows=16384)
    write_tsv(work / "long_train.tsv", lt, ll)
    lvt, lvl = long_texts(dev_t, dev_l, args.long_chars, n_rows=512, seed=1)
    write_tsv(work / "long_val.tsv", lvt, lvl)
    bert = work / "bert-base"
    if not bert.exists():
        make_bert_base(Path(args.model), bert, tiny=args.smoke)
    return {"names": names, "long_rows": len(lt), "short_rows": len(texts)}


def make_bert_base(tokenizer_from: Path, out: Path, *, tiny: bool = False) -> None:
    """A BERT-base-size encoder with random weights and the tokenizer of *tokenizer_from*."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(tokenizer_from))
    size = (
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
        if tiny
        else {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
    )
    cfg = BertConfig(
        vocab_size=len(tok),
        intermediate_size=4 * size["hidden_size"],
        max_position_embeddings=512,
        **size,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))


# ----------------------------------------------------------------------------- timing
class StepClock:
    """Synchronise and read the clock at optimizer step *warmup* and at the last step."""

    def __init__(self, warmup: int, steps: int) -> None:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.warmup, self.steps, self.count = warmup, steps, 0
        self.t0: float | None = None
        self.t1: float | None = None
        self.torch = torch
        self.handle = register_optimizer_step_post_hook(self._hook)

    def _sync(self) -> None:
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def _hook(self, *_: Any) -> None:
        self.count += 1
        if self.count == self.warmup:
            self._sync()
            self.t0 = time.perf_counter()
        elif self.count == self.steps:
            self._sync()
            self.t1 = time.perf_counter()

    def seconds(self) -> float:
        if self.t0 is None or self.t1 is None:
            raise RuntimeError(f"only {self.count} optimizer steps ran (want {self.steps})")
        return self.t1 - self.t0


class StepProfiler:
    """torch.profiler over *active* optimizer steps after the timed window (steps + 2 ...).

    Writes the top operators by device and by host time and a per-step digest: host wall
    time, GPU busy time (sum of kernel and copy times) and kernels launched per step.
    """

    def __init__(self, start_after: int, active: int, out: Path) -> None:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook
        from torch.profiler import ProfilerActivity, profile, schedule

        acts = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            acts.append(ProfilerActivity.CUDA)
        self.active, self.out, self.count = active, out, 0
        self.wall: list[float] = []
        self.prof = profile(
            activities=acts,
            schedule=schedule(wait=start_after + 1, warmup=1, active=active, repeat=1),
            on_trace_ready=self._ready,
        )
        self.prof.__enter__()
        self.digest: dict[str, Any] = {}
        self.handle = register_optimizer_step_post_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.wall.append(time.perf_counter())
        self.prof.step()

    def _ready(self, prof: Any) -> None:
        import torch

        events = prof.events()
        device_kinds = (torch.autograd.DeviceType.CUDA,)
        kernels = [e for e in events if getattr(e, "device_type", None) in device_kinds]
        busy_us = sum(
            float(getattr(e, "device_time", None) or getattr(e, "cuda_time", 0.0) or 0.0)
            for e in kernels
        )
        host = [b - a for a, b in zip(self.wall[-self.active - 1 :], self.wall[-self.active :])]
        self.digest = {
            "profiled_steps": self.active,
            "host_ms_per_step": 1000 * sum(host) / max(len(host), 1),
            "gpu_busy_ms_per_step": busy_us / 1000 / self.active,
            "kernels_per_step": len(kernels) / self.active,
        }
        averages = prof.key_averages()
        lines = [json.dumps(self.digest)]
        for key in ("self_device_time_total", "self_cuda_time_total", "self_cpu_time_total"):
            try:
                lines.append(averages.table(sort_by=key, row_limit=22, max_name_column_width=60))
            except Exception as exc:  # a sort key this torch lacks
                lines.append(f"(no table by {key}: {exc})")
        self.out.write_text("\n\n".join(lines), encoding="utf-8")

    def close(self) -> dict[str, Any]:
        try:
            self.prof.__exit__(None, None, None)
        except Exception as exc:
            return {"profile_error": str(exc)[:300]}
        return self.digest


def model_flops_per_row(config: Any, tokens: list[int]) -> float:
    """Useful training FLOPs per row: 6 N T + 12 L H T^2 averaged over the rows' T."""
    h, layers = config.hidden_size, config.num_hidden_layers
    inter = getattr(config, "intermediate_size", 4 * h)
    per_layer = 4 * h * h + 2 * h * inter  # attention projections + feed-forward weights
    n = layers * per_layer
    mean_t = sum(tokens) / len(tokens)
    mean_t2 = sum(t * t for t in tokens) / len(tokens)
    return 6.0 * n * mean_t + 12.0 * layers * h * mean_t2


def token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> list[int]:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return [len(x) for x in enc["input_ids"]]


# ----------------------------------------------------------------------------- variants
def multi_hot(labels: list[list[int]], n: int) -> list[list[float]]:
    out = []
    for y in labels:
        row = [0.0] * n
        for j in y:
            row[j] = 1.0
        out.append(row)
    return out


def run_hf(case: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    names = (work / "labels.txt").read_text(encoding="utf-8").split()
    texts, labels = read_tsv(work / f"{case['data']}_train.tsv")
    tok = AutoTokenizer.from_pretrained(case["model"])
    enc = tok(texts, truncation=True, max_length=args.max_length)
    hot = multi_hot(labels, len(names))
    rows = [
        {"input_ids": i, "attention_mask": m, "labels": y}
        for i, m, y in zip(enc["input_ids"], enc["attention_mask"], hot, strict=True)
    ]
    model = AutoModelForSequenceClassification.from_pretrained(
        case["model"],
        num_labels=len(names),
        problem_type="multi_label_classification",
    )
    targs = TrainingArguments(
        output_dir=str(work / "hf-out"),
        per_device_train_batch_size=case["batch"],
        max_steps=case["steps"] + case["extra"],
        learning_rate=3e-5,
        bf16=torch.cuda.is_available(),
        logging_steps=50,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        seed=0,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=rows,
        data_collator=DataCollatorWithPadding(tok),
    )
    clock = StepClock(case["warmup"], case["steps"])
    trainer.train()
    return {"seconds": clock.seconds(), "tokens": token_lengths(tok, texts, args.max_length)}


def read_tsv(path: Path) -> tuple[list[str], list[list[int]]]:
    texts, labels = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            texts.append(parts[0])
            labels.append([int(x) for x in parts[1].split(",") if x])
    return texts, labels


def run_mlb(case: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from mlbalance.train.config import TrainConfig
    from mlbalance.train.trainer import train

    options = dict(parse_options(args.mlb_options))
    cfg = TrainConfig(
        train=str(work / f"{case['data']}_train.tsv"),
        val=str(work / f"{case['data']}_val.tsv"),
        out=str(work / "mlb-out"),
        overwrite=True,
        header_names="text,labels,id",
        label_sep=",",
        label_names=str(work / "labels.txt"),
        model=case["model"],
        epochs=1,
        max_steps=case["steps"] + case["extra"],
        batch_size=case["batch"],
        eval_batch_size=512,
        max_length=args.max_length,
        lr=3e-5,
        precision="bf16" if torch.cuda.is_available() else "fp32",
        log_every=50,
        seed=0,
        **options,
    )
    clock = StepClock(case["warmup"], case["steps"])
    result = train(cfg, log=lambda s: None, progress=False)
    texts, _ = read_tsv(work / f"{case['data']}_train.tsv")
    tok = AutoTokenizer.from_pretrained(case["model"])
    extra = {"mlb_rows_per_s": result.train_samples_per_s}
    timing = getattr(result, "timing", None)
    if timing:
        extra["timing"] = timing
    return {
        "seconds": clock.seconds(),
        "tokens": token_lengths(tok, texts, args.max_length),
        **extra,
    }


def run_raw(
    case: dict[str, Any], args: argparse.Namespace, work: Path, mode: str
) -> dict[str, Any]:
    """A minimal loop: pre-tokenised, pinned, fused AdamW, no per-step sync."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    names = (work / "labels.txt").read_text(encoding="utf-8").split()
    texts, labels = read_tsv(work / f"{case['data']}_train.tsv")
    tok = AutoTokenizer.from_pretrained(case["model"])
    enc = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    hot = torch.tensor(multi_hot(labels, len(names)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForSequenceClassification.from_pretrained(
        case["model"], num_labels=len(names), problem_type="multi_label_classification"
    ).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=device.type == "cuda")
    step_fn = model
    if mode in ("compile", "graphs"):
        step_fn = torch.compile(model, mode="reduce-overhead" if mode == "graphs" else None)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(enc))
    b = case["batch"]
    multiple = 16 if mode != "eager" else 1
    pad = tok.pad_token_id or 0
    loss_fn = torch.nn.BCEWithLogitsLoss()
    clock = StepClock(case["warmup"], case["steps"])
    t_compile = time.perf_counter()
    for step in range(case["steps"] + case["extra"]):
        idx = order[(step * b) % (len(order) - b) :][:b]
        seqs = [enc[i] for i in idx]
        width = max(len(s) for s in seqs)
        width = -(-width // multiple) * multiple
        ids = np.full((b, width), pad, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = s
            mask[r, : len(s)] = 1
        ids_t = to_device(torch.from_numpy(ids), device)
        mask_t = to_device(torch.from_numpy(mask), device)
        y = to_device(hot[idx], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = step_fn(input_ids=ids_t, attention_mask=mask_t).logits
        loss = loss_fn(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_compile = time.perf_counter() - t_compile
    return {
        "seconds": clock.seconds(),
        "tokens": token_lengths(tok, texts, args.max_length),
        "first_step_s": t_compile,
    }


def to_device(t: Any, device: Any) -> Any:
    """Pinned host memory and an asynchronous copy on CUDA; as it is on CPU."""
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


def parse_options(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        key, _, value = item.partition("=")
        low = value.lower()
        parsed: Any = value
        if low in ("true", "false"):
            parsed = low == "true"
        else:
            for kind in (int, float):
                try:
                    parsed = kind(value)
                    break
                except ValueError:
                    pass
        out.append((key.replace("-", "_"), parsed))
    return out


# ----------------------------------------------------------------------------- driver
def case_of(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    kind, _, batch = name.partition("-b")
    if kind == "minilm":
        model, data, steps, warmup = args.model, "short", args.steps, args.warmup
    elif kind == "bert":
        model, data = str(work / "bert-base"), "long"
        steps, warmup = args.bert_steps, args.bert_warmup
    else:
        raise SystemExit(f"unknown case {name!r} (minilm-bN or bert-bN)")
    return {
        "name": name,
        "model": model,
        "data": data,
        "batch": int(batch),
        "steps": steps,
        "warmup": warmup,
        "extra": args.profile_steps + 3 if args.profile_steps else 0,
    }


def worker(args: argparse.Namespace) -> None:
    work = Path(args.work)
    case = case_of(args.case, args, work)
    variant = args.variant
    t_start = time.perf_counter()
    profiler = None
    if args.profile_steps:
        target = Path(args.result).parent / f"profile-{case['name']}-{variant}.txt"
        profiler = StepProfiler(case["steps"], args.profile_steps, target)
    if variant == "hf":
        res = run_hf(case, args, work)
    elif variant == "mlb":
        res = run_mlb(case, args, work)
    elif variant.startswith("raw"):
        mode = {"raw": "eager", "raw-compile": "compile", "raw-graphs": "graphs"}[variant]
        res = run_raw(case, args, work, mode)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    if profiler is not None:
        res["profile"] = profiler.close()
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(case["model"])
    tokens = res.pop("tokens")
    measured = case["steps"] - case["warmup"]
    rows_s = measured * case["batch"] / res["seconds"]
    flops_row = model_flops_per_row(config, tokens)
    out = {
        "case": case["name"],
        "variant": variant,
        "batch": case["batch"],
        "steps_measured": measured,
        "rows_per_s": rows_s,
        "tokens_per_s": rows_s * sum(tokens) / len(tokens),
        "ms_per_step": 1000 * res["seconds"] / measured,
        "mfu": rows_s * flops_row / (args.peak_tflops * 1e12),
        "mean_tokens": sum(tokens) / len(tokens),
        "wall_s": time.perf_counter() - t_start,
        **res,
    }
    with open(args.result, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(out) + "\n")


def environment() -> dict[str, Any]:
    import torch
    import transformers

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        x = torch.zeros(1, device="cuda")
        for _ in range(200):
            x += 1
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(2000):
            x += 1
        torch.cuda.synchronize()
        env["launch_us"] = (time.perf_counter() - t) / 2000 * 1e6
        t = time.perf_counter()
        for _ in range(200):
            x.item()
        env["sync_roundtrip_us"] = (time.perf_counter() - t) / 200 * 1e6
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="all-MiniLM-L6-v2 folder")
    p.add_argument("--data", default="../shared/datasets/goemotions", help="GoEmotions folder")
    p.add_argument("--out", default="bench-output/gpu", help="results folder")
    p.add_argument("--cases", default="minilm-b32,bert-b64")
    p.add_argument("--variants", default="hf,mlb")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--runs",
        help="CASE:VARIANT pairs to run instead of every case x variant, e.g. "
        "minilm-b32:hf,minilm-b32:mlb,bert-b64:mlb",
    )
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (minilm cases)")
    p.add_argument("--warmup", type=int, default=50, help="steps before the clock starts")
    p.add_argument("--bert-steps", type=int, default=120)
    p.add_argument("--bert-warmup", type=int, default=30)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--long-chars", type=int, default=900, help="characters per long text")
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--timeout", type=int, default=300, help="seconds per worker process")
    p.add_argument("--mlb-options", nargs="*", metavar="KEY=VALUE")
    p.add_argument(
        "--profile-steps", type=int, default=0, help="profile N steps after the timed window"
    )
    p.add_argument("--smoke", action="store_true", help="tiny model, few steps (CPU check)")
    # worker mode
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    if args.smoke:  # a tiny random BERT stands in for MiniLM; a few steps
        from mlbalance.train.tiny import make_tiny_model

        texts, _, _ = read_goemotions(Path(args.data), "train")
        args.model = str(make_tiny_model(work / "tiny", texts[:2000], vocab_size=1000))
        args.steps, args.warmup, args.bert_steps, args.bert_warmup = 12, 4, 8, 3
    info = {"environment": environment(), "args": vars(args), **prepare(args, work)}
    print(json.dumps(info["environment"]), flush=True)
    result = out / "results.jsonl"
    failures = []
    pairs = [
        (case, variant) for case in args.cases.split(",") for variant in args.variants.split(",")
    ]
    if args.runs:
        pairs = [tuple(item.split(":", 1)) for item in args.runs.split(",")]  # type: ignore[misc]
    for _ in range(args.repeats):
        for case, variant in pairs:
            cmd = [sys.executable, __file__, "--worker", "--work", str(work)]
            cmd += ["--case", case, "--variant", variant, "--result", str(result)]
            cmd += _passed(args)
            if args.mlb_options:
                cmd += ["--mlb-options", *args.mlb_options]
            t = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                ok = proc.returncode == 0
                tail = (proc.stderr or "")[-1500:]
            except subprocess.TimeoutExpired:
                ok, tail = False, f"timed out after {args.timeout} s"
            status = "ok" if ok else "FAILED"
            print(f"{case} {variant}: {status} ({time.perf_counter() - t:.0f} s)", flush=True)
            if not ok:
                failures.append({"case": case, "variant": variant, "error": tail})
                print(tail, flush=True)
    rows = [json.loads(line) for line in result.read_text().splitlines()] if result.exists() else []
    info["failures"] = failures
    (out / "environment.json").write_text(json.dumps(info, indent=1, default=str))
    print(summary(rows))
    (out / "summary.md").write_text(summary(rows) + "\n")


def _passed(args: argparse.Namespace) -> list[str]:
    """The driver's options a worker needs, as command-line arguments."""
    keys = (
        "model", "data", "steps", "warmup", "bert_steps", "bert_warmup", "max_length",
        "peak_tflops", "profile_steps",
    )  # fmt: skip
    cmd = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys]
    return [*cmd, "--smoke"] if args.smoke else cmd


def summary(rows: list[dict[str, Any]]) -> str:
    """Median per (case, variant) and the ratio of each variant to hf."""
    import statistics

    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    lines = [
        "| case | variant | runs | rows/s | tokens/s | ms/step | MFU | vs hf | host ms/step "
        "| GPU busy ms/step | kernels/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (case, variant), rs in sorted(by.items()):
        med = statistics.median(r["rows_per_s"] for r in rs)
        hf = by.get((case, "hf"))
        ratio = med / statistics.median(r["rows_per_s"] for r in hf) if hf else float("nan")
        pick = min(rs, key=lambda r: abs(r["rows_per_s"] - med))
        prof = pick.get("profile") or {}
        digest = " | ".join(
            f"{prof[k]:.1f}" if isinstance(prof.get(k), (int, float)) else "-"
            for k in ("host_ms_per_step", "gpu_busy_ms_per_step", "kernels_per_step")
        )
        lines.append(
            f"| {case} | {variant} | {len(rs)} | {med:,.0f} | {pick['tokens_per_s']:,.0f} | "
            f"{pick['ms_per_step']:.1f} | {100 * pick['mfu']:.1f}% | {ratio:.2f}x | {digest} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
