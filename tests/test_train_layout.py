"""The trainer's layout: modules by concern, who may import whom, no argparse in the library.

docs/DEVELOPING.md draws the map; this test keeps the code on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mlbalance"
TRAIN = SRC / "train"
TRAINING_SIDE = {"trainer", "loop", "build", "checkpoint"}
PREDICTION_SIDE = {"predict"}


def _imports(path: Path) -> set[str]:
    """Every module *path* imports (absolute names), at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _train_modules(names: set[str]) -> set[str]:
    prefix = "mlbalance.train."
    return {n[len(prefix) :].split(".")[0] for n in names if n.startswith(prefix)}


@pytest.mark.parametrize("path", sorted(TRAIN.glob("*.py")), ids=lambda p: p.name)
def test_no_train_module_is_over_500_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500


def test_training_and_prediction_meet_only_in_the_model_folder():
    for path in TRAIN.glob("*.py"):
        used = _train_modules(_imports(path))
        if path.stem in TRAINING_SIDE:
            assert not used & PREDICTION_SIDE, f"{path.name} imports {used & PREDICTION_SIDE}"
        if path.stem in PREDICTION_SIDE | {"model_folder", "predictor", "inference"}:
            assert not used & TRAINING_SIDE, f"{path.name} imports {used & TRAINING_SIDE}"


def test_the_library_owns_no_argparse_and_never_imports_the_cli():
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":
            continue
        names = _imports(path)
        assert "argparse" not in names, f"{path.relative_to(SRC)} imports argparse"
        assert not any(n.startswith("mlbalance.cli") for n in names), path.relative_to(SRC)


def test_one_module_owns_the_process_group():
    for path in TRAIN.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "runtime.py":
            assert "torch.distributed." not in text, f"{path.name}: ask mlbalance.train.runtime"
            assert 'environ.get("RANK"' not in text, path.name


def test_the_model_folder_file_names_have_one_owner():
    for path in SRC.rglob("*.py"):
        if path.name == "model_folder.py":
            continue
        text = path.read_text(encoding="utf-8")
        for name in ("training_args.json", "label_counts.json", "head_config.json"):
            assert f'"{name}"' not in text, f"{path.relative_to(SRC)} spells {name}"


#: What the io edge may import: the data types and helpers below every stage (and, lazily, the
#: resampling result type that the shard writer writes), never a stage, the CLI or torch.
IO_MAY_IMPORT = ("mlbalance.io", "mlbalance.errors", "mlbalance.labels", "mlbalance._progress",
                 "mlbalance._threads", "mlbalance._version", "mlbalance.resample.base")  # fmt: skip


@pytest.mark.parametrize("path", sorted((SRC / "io").glob("*.py")), ids=lambda p: p.name)
def test_io_is_the_edge_and_imports_no_stage(path):
    for name in _imports(path):
        if name.startswith("mlbalance"):
            assert name == "mlbalance" or name.startswith(IO_MAY_IMPORT), f"{path.name}: {name}"
        assert not name.startswith(("torch", "transformers", "matplotlib")), f"{path.name}: {name}"
