"""The scheduler of ``recipes_ft.py run``: processes, budget, resume, one JSON per run.

A run is one process (``ft_job.py``): ``mlbalance train`` (the model goes to ``RUN/model``),
then ``mlbalance predict`` on the data set's ``eval.parquet`` (dev rows then test rows), both
through the CLI entry point in one interpreter. Then the scores are stored small
(:mod:`ft_scores`), the trainer's JSON files are kept, the model is deleted (unless
``--keep-models``) and ``RUN/run.json`` is written last — its presence marks the run as done,
so a second ``run`` skips it (resume).

A run that ends badly leaves ``RUN/failed.json`` (a process exited non-zero; skipped on resume
unless ``--retry-failed``) or ``RUN/killed.json`` (stopped by ``--run-timeout-s`` or the
deadline; retried on resume), each with the reason, the seconds and the log's tail.

Budget: runs start in priority order while the time left, ``budget - elapsed``, holds the run's
estimated seconds. The estimate is ``planned rows x seconds per row`` of the finished runs of the
same data set (their median), or of any data set when none has finished; with no finished run
yet, runs start unestimated. At the deadline (default 1.25 x the budget; set it below the
machine's own time limit) running processes are killed and recorded; so are they when the
runner itself gets SIGTERM or SIGINT (``timeout``, Ctrl-C).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RUN_JSON, FAILED_JSON, KILLED_JSON = "run.json", "failed.json", "killed.json"
LOG, STAGES = "train.log", "stages.json"
JOB = Path(__file__).resolve().parent / "ft_job.py"
KEEP_FILES = ("metrics.json", "thresholds.json", "training_args.json", "label_counts.json")


@dataclass
class Run:
    """One (data set, recipe, seed) of the plan."""

    dataset: str
    recipe: str
    seed: int
    folder: Path
    train_cmd: list[str]  # mlbalance CLI arguments, "train" first
    predict_cmd: list[str]  # mlbalance CLI arguments, "predict" first
    planned_rows: float  # training rows over all epochs, sampler growth included
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.recipe}-s{self.seed}"

    def command(self) -> list[str]:
        """The one process of this run."""
        stages = str(self.folder / STAGES)
        return [sys.executable, str(JOB), stages, *self.train_cmd, "--then", *self.predict_cmd]

    def stages(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.folder / STAGES).read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            return {}

    def status(self) -> str:
        for name, state in ((RUN_JSON, "done"), (FAILED_JSON, "failed"), (KILLED_JSON, "killed")):
            if (self.folder / name).exists():
                return state
        return "pending"


class _Stopped(Exception):
    """The runner got SIGTERM or SIGINT."""


@dataclass
class _Active:
    run: Run
    proc: subprocess.Popen
    started: float


def _write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _log_tail(folder: Path, lines: int = 30) -> list[str]:
    try:
        return (folder / LOG).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def _kill(proc: subprocess.Popen) -> None:
    """Terminate the process group we started (the trainer's data workers with it)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Scheduler:
    """Runs the plan: at most *parallel* runs at once, in order, within the budget."""

    def __init__(
        self,
        runs: list[Run],
        *,
        parallel: int,
        budget_s: float,
        deadline_s: float,
        run_timeout_s: float,
        finish: Any,
        env: dict[str, str],
        say: Any = print,
        retry_failed: bool = False,
        poll_s: float = 0.5,
    ) -> None:
        self.runs, self.parallel, self.budget_s = runs, parallel, budget_s
        self.deadline_s, self.run_timeout_s = deadline_s, run_timeout_s
        self.finish, self.env, self.say = finish, env, say
        self.retry_failed, self.poll_s = retry_failed, poll_s
        self.t0 = time.monotonic()
        self.summary: dict[str, list[str]] = {
            "done_before": [],
            "failed_before": [],
            "finished": [],
            "failed": [],
            "killed": [],
            "not_started_budget": [],
        }

    # --- estimates ---------------------------------------------------------------------
    def seconds_per_row(self, dataset: str) -> float | None:
        """Median seconds per planned row of the finished runs (same data set first)."""
        rates: dict[str, list[float]] = {}
        for run in self.runs:
            path = run.folder / RUN_JSON
            if path.exists():
                rec = json.loads(path.read_text(encoding="utf-8"))
                if rec.get("planned_rows"):
                    rates.setdefault(run.dataset, []).append(rec["seconds"] / rec["planned_rows"])
        same = rates.get(dataset)
        pooled = [r for v in rates.values() for r in v]
        if same:
            return float(np.median(same))
        return float(np.median(pooled)) if pooled else None

    def estimate(self, run: Run) -> float | None:
        rate = self.seconds_per_row(run.dataset)
        return None if rate is None else rate * run.planned_rows

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    # --- processes ---------------------------------------------------------------------
    def _start(self, run: Run) -> _Active:
        run.folder.mkdir(parents=True, exist_ok=True)
        cmd = run.command()
        with open(run.folder / LOG, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        return _Active(run, proc, time.monotonic())

    def _record_end(self, a: _Active, name: str, reason: str) -> None:
        seconds = round(time.monotonic() - a.started, 1)
        rec = {
            "dataset": a.run.dataset,
            "recipe": a.run.recipe,
            "seed": a.run.seed,
            "status": name.split(".")[0],
            "reason": reason,
            "seconds": seconds,
            "stages": a.run.stages(),
            "log_tail": _log_tail(a.run.folder),
        }
        for path in (a.run.folder / "model", a.run.folder / "model.ckpt"):
            shutil.rmtree(path, ignore_errors=True)
        (a.run.folder / "eval-scores.parquet").unlink(missing_ok=True)
        _write_json(rec, a.run.folder / name)
        self.summary[rec["status"]].append(a.run.key)
        self.say(f"  {a.run.key}: {rec['status']} after {seconds:.0f} s ({reason})")

    def _step(self, a: _Active) -> bool:
        """Check one active run; True when it left its slot."""
        rc = a.proc.poll()
        now = time.monotonic()
        if rc is None:
            if now - a.started > self.run_timeout_s:
                _kill(a.proc)
                self._record_end(a, KILLED_JSON, f"over --run-timeout-s {self.run_timeout_s:g}")
                return True
            return False
        if rc != 0:
            stage = a.run.stages().get("failed_stage", "the job")
            self._record_end(a, FAILED_JSON, f"{stage} exited with code {rc}")
            return True
        try:
            record = self.finish(a.run, a.run.stages(), round(now - a.started, 2))
        except Exception as exc:  # record why the run could not be stored, go on with the rest
            self._record_end(a, FAILED_JSON, f"storing the results failed: {exc!r}")
            return True
        _write_json(record, a.run.folder / RUN_JSON)
        self.summary["finished"].append(a.run.key)
        self.say(f"  {a.run.key}: done in {record['seconds']:.0f} s ({record['headline']})")
        return True

    # --- the loop ----------------------------------------------------------------------
    def pending(self) -> list[Run]:
        todo = []
        for run in self.runs:
            state = run.status()
            if state == "done":
                self.summary["done_before"].append(run.key)
            elif state == "failed" and not self.retry_failed:
                self.summary["failed_before"].append(run.key)
            else:
                for name in (KILLED_JSON, FAILED_JSON, LOG, STAGES):
                    (run.folder / name).unlink(missing_ok=True)
                todo.append(run)
        return todo

    def run(self) -> dict[str, list[str]]:
        """Run the plan; on SIGTERM/SIGINT kill the runs in flight, record them, and return."""
        active: list[_Active] = []

        def stop(signum: int, frame: Any) -> None:
            raise _Stopped(signal.Signals(signum).name)

        handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop(active)
        except _Stopped as exc:
            for a in active:
                _kill(a.proc)
                self._record_end(a, KILLED_JSON, f"the runner was stopped ({exc})")
            return self.summary
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)

    def _loop(self, active: list[_Active]) -> dict[str, list[str]]:
        queue = self.pending()
        n_before = len(self.summary["done_before"])
        self.say(
            f"{len(queue)} run(s) to do, {n_before} done before; at most {self.parallel} at "
            f"once, budget {self.budget_s:g} s, deadline {self.deadline_s:g} s"
        )
        while queue or active:
            while queue and len(active) < self.parallel:
                run = queue[0]
                est = self.estimate(run)
                left = self.budget_s - self.elapsed()
                if est is not None and est > left:
                    queue.pop(0)
                    self.summary["not_started_budget"].append(run.key)
                    self.say(f"  {run.key}: not started, needs ~{est:.0f} s, {left:.0f} s left")
                    continue
                if est is None and left <= 0:
                    queue.pop(0)
                    self.summary["not_started_budget"].append(run.key)
                    continue
                queue.pop(0)
                guess = "unknown" if est is None else f"~{est:.0f} s"
                self.say(f"  {run.key}: start ({guess}, at {self.elapsed():.0f} s)")
                active.append(self._start(run))
            time.sleep(self.poll_s)
            active[:] = [a for a in active if not self._step(a)]
            if self.elapsed() > self.deadline_s and active:
                for a in active:
                    _kill(a.proc)
                    self._record_end(a, KILLED_JSON, f"deadline {self.deadline_s:g} s reached")
                active.clear()
                for run in queue:
                    self.summary["not_started_budget"].append(run.key)
                queue = []
        return self.summary


def python_env(parallel: int) -> dict[str, str]:
    """Environment of the child processes: offline, quiet, CPU threads shared out."""
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // max(parallel, 1)))
    env.update(
        {
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "MLBALANCE_NO_PROGRESS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # the children import this checkout's mlbalance, as `python -m mlbalance` here would
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def mlbalance_cmd() -> list[str]:
    """``python -m mlbalance`` with this interpreter."""
    return [sys.executable, "-m", "mlbalance"]
