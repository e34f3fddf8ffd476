"""Moving a fine-tuned study between machines: packed results, half-precision models.

* :func:`pack` — a run folder (no data, no model weights) as ``NAME.tgz.000``, ``.001``, ... of
  at most ``--part-mb`` each (a device may bring back only a few files of limited size);
  ``cat NAME.tgz.* | tar xzf -`` restores it.
* :func:`pack_model` — a float16 copy of a model folder (all-MiniLM-L6-v2 is 87 MiB in
  float32, 44 in float16), to carry under a size limit; :func:`fp32_model` turns it back into
  float32 before training.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

SKIP_IN_PACK = ("data", "_model-fp32")


def fp32_model(model: str, work: Path, say: Any) -> str:
    """*model* itself, or a float32 copy when its safetensors hold float16/bfloat16 weights.

    A half-precision copy is how a model travels under a size limit (``pack-model``); the
    trainer must start from float32 weights (it trains in float32 under bf16 autocast).
    """
    folder = Path(model)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files or not any(_half_precision(f) for f in files):
        return model
    target = work / "_model-fp32"
    if not (target / "done").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("*.safetensors"))
        for f in files:
            _convert(f, target / f.name, "float")
        (target / "done").write_text("ok\n")
        say(f"model {folder}: half-precision weights, training from a float32 copy in {target}")
    return str(target)


def _convert(src: Path, dst: Path, how: str) -> None:
    """Copy a safetensors file with every tensor cast (``float`` or ``half``), metadata kept.

    transformers refuses a safetensors file whose metadata lacks ``format: pt``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), "pt") as fh:
        metadata = dict(fh.metadata() or {})
    metadata.setdefault("format", "pt")
    tensors = {k: getattr(v, how)().contiguous() for k, v in load_file(src).items()}
    save_file(tensors, dst, metadata=metadata)


def _half_precision(path: Path) -> bool:
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
    return any(isinstance(v, dict) and v.get("dtype") in ("F16", "BF16") for v in header.values())


def pack(runs: Path, to: Path, part_mb: float) -> list[Path]:
    """tar.gz of a run folder (no data, no models) in parts of at most --part-mb MB."""
    to.mkdir(parents=True, exist_ok=True)
    limit = int(part_mb * 1_000_000)
    base = to / f"{runs.name}.tgz"
    for old in to.glob(base.name + ".*"):
        old.unlink()

    class Parts:
        def __init__(self) -> None:
            self.index, self.size, self.fh = 0, 0, open(f"{base}.{0:03d}", "wb")

        def write(self, data: bytes) -> int:
            view = memoryview(data)
            while view:
                if self.size == limit:
                    self.fh.close()
                    self.index, self.size = self.index + 1, 0
                    self.fh = open(f"{base}.{self.index:03d}", "wb")
                n = min(limit - self.size, len(view))
                self.fh.write(view[:n])
                self.size, view = self.size + n, view[n:]
            return len(data)

    parts = Parts()
    with tarfile.open(fileobj=parts, mode="w|gz") as tar:  # type: ignore[call-overload]
        for path in sorted(runs.rglob("*")):
            rel = path.relative_to(runs)
            if path.is_file() and rel.parts[0] not in SKIP_IN_PACK and "model" not in rel.parts:
                tar.add(path, arcname=str(Path(runs.name) / rel))
    parts.fh.close()
    written = sorted(to.glob(base.name + ".*"))
    total = sum(p.stat().st_size for p in written)
    print(
        f"wrote {len(written)} part(s), {total / 1e6:.1f} MB: {', '.join(p.name for p in written)}"
    )
    print(f"unpack: cat {base.name}.* | tar xzf -")
    return written


def pack_model(src: Path, dst: Path) -> None:
    """A float16 copy of a model folder, to carry under a size limit (``run`` restores fp32)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors"))
    for f in sorted(Path(src).glob("*.safetensors")):
        _convert(f, Path(dst) / f.name, "half")
    size = sum(p.stat().st_size for p in Path(dst).rglob("*") if p.is_file())
    print(f"wrote {dst} ({size / 1e6:.1f} MB)")
