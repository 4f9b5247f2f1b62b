"""Issue 25: sweeps as Ray tasks (``executor="ray"``): the same tables and run folders as in process, resume
across executors after the driver is killed, failed tasks retried then reported. Real trainings on a local Ray
instance with 2 CPUs; no mocks."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import ray  # the dev extra installs it (kerasinit[ray])

from kerasinit.experiments.compare import run_compare
from kerasinit.experiments.executor import (
    InProcess,
    RayExecutor,
    TaskFailedWarning,
    resolve_executor,
)
from kerasinit.experiments.lottery import run_lottery

COMPARE = {"inits": ["glorot_uniform", "he_normal"], "seeds": 2, "epochs": 1, "depth": 2, "width": 32, "plots": False}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the failing initializer below lives in this test module, which workers cannot import: send it by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def runs_table(results):
    return results.to_pandas().drop(columns="seconds")


def test_compare_on_ray_equals_in_process_bit_for_bit(cluster, tmp_path):
    here = run_compare("mlp", "digits", out=tmp_path / "here", **COMPARE)
    there = run_compare("mlp", "digits", out=tmp_path / "there", executor="ray", **COMPARE)
    assert runs_table(there).equals(runs_table(here))  # TensorFlow on CPU: identical accuracies and losses
    assert [r.test_accuracy for r in there.runs] == [r.test_accuracy for r in here.runs]
    assert there.table() == here.table()
    assert sorted(there.trained) == sorted(here.trained) and there.failed == []
    saved = [json.loads((tmp_path / d / "results.json").read_text())["runs"] for d in ("here", "there")]
    for a, b in zip(*saved, strict=True):  # the same run folder: results.json rows equal but for the timing
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}


def test_resume_after_killing_the_driver_runs_only_the_missing_tasks(cluster, tmp_path):
    out = tmp_path / "sweep"
    settings = {**COMPARE, "seeds": 3}
    code = textwrap.dedent(f"""
        from kerasinit.experiments.compare import run_compare
        from kerasinit.experiments.executor import RayExecutor
        run_compare("mlp", "digits", out={str(out)!r}, executor=RayExecutor(address={cluster!r}), **{settings!r})
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results, on_disk = out / "results.json", []
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if results.exists():
            on_disk = [(r["init"], r["seed"]) for r in json.loads(results.read_text())["runs"]]
            if on_disk:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < len(on_disk) < 6, (on_disk, proc.stderr.read()[-2000:])
    on_disk = [(r["init"], r["seed"]) for r in json.loads(results.read_text())["runs"]]
    assert len(on_disk) < 6

    resumed = run_compare("mlp", "digits", out=out, executor="ray", **settings)
    wanted = [(i, s) for i in settings["inits"] for s in range(3)]
    assert sorted(resumed.trained) == sorted(set(wanted) - set(on_disk))  # only the missing tasks ran
    reference = run_compare("mlp", "digits", executor="ray", **settings)  # uninterrupted
    assert runs_table(resumed).equals(runs_table(reference))
    assert resumed.table() == reference.table()


class FailsForSeed(keras.initializers.Initializer):
    """Glorot-like draws, except that it raises for every layer of the models drawn with ``bad_seed`` (the zoo
    gives layer i of seed s the initializer seed ``1000 s + i``); each raise is logged to ``log``."""

    def __init__(self, bad_seed: int, log: str, seed: int | None = None) -> None:
        self.bad_seed, self.log, self.seed = bad_seed, log, seed

    def __call__(self, shape, dtype=None):
        if self.seed is not None and self.seed // 1000 == self.bad_seed:
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            raise RuntimeError(f"no weights for seed {self.bad_seed}")
        return keras.initializers.GlorotNormal(seed=self.seed)(shape, dtype=dtype)

    def get_config(self):
        return {"bad_seed": self.bad_seed, "log": self.log, "seed": self.seed}


def test_a_failing_task_is_retried_then_reported_by_name_and_the_others_complete(cluster, tmp_path):
    log = str(tmp_path / "attempts.log")
    inits = {"fails": FailsForSeed(1, log), "he_normal": "he_normal"}
    with pytest.warns(TaskFailedWarning, match=r"fails seed 1 \(RuntimeError: no weights for seed 1, 2 attempts\)"):
        results = run_compare("mlp", "digits", **{**COMPARE, "inits": inits}, out=tmp_path / "o",
                              executor=RayExecutor(retries=1))
    with open(log) as fh:
        assert len(fh.read().split()) == 2  # the first attempt and one retry
    assert results.failed == [{"task": "fails seed 1", "error": "RuntimeError: no weights for seed 1", "attempts": 2}]
    assert sorted((r.init, r.seed) for r in results.runs) == [("fails", 0), ("he_normal", 0), ("he_normal", 1)]
    assert all(math.isfinite(r.test_accuracy) for r in results.runs)
    assert any(n.startswith("failed: fails seed 1 after 2 attempts") for n in results.notes)
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert len(saved["runs"]) == 3 and saved["failed"][0]["task"] == "fails seed 1"


def test_lottery_on_ray_equals_in_process(cluster):
    kw = {"seeds": 2, "rounds": 2, "epochs": 1, "plots": False}
    here = run_lottery("lenet_300_100", "digits", **kw).to_pandas()
    there = run_lottery("lenet_300_100", "digits", executor="ray", **kw).to_pandas()
    assert list(there.columns) == list(here.columns) and len(here) == 6
    exact = [c for c in here.columns if not c.endswith("val_loss")]
    assert there[exact].equals(here[exact])  # masks, remaining weights, accuracies, early-stop steps
    # the workers run with TensorFlow's op determinism on, this process without it: validation losses agree to
    # float32 rounding (bit for bit when this process also sets TF_DETERMINISTIC_OPS=1)
    losses = [c for c in here.columns if c.endswith("val_loss")]
    np.testing.assert_allclose(there[losses].to_numpy(float), here[losses].to_numpy(float), rtol=1e-6)


def test_without_ray_executor_ray_says_how_to_install_it():
    code = textwrap.dedent("""
        import sys
        sys.modules["ray"] = None
        from kerasinit.experiments.compare import run_compare
        try:
            run_compare("mlp", "digits", executor="ray", epochs=1, seeds=1)
        except ImportError as exc:
            print(exc)
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "executor='ray' needs Ray, which is not installed: pip install 'kerasinit[ray]'" in proc.stdout


def test_bad_executor_arguments():
    assert isinstance(resolve_executor(None), InProcess) and isinstance(resolve_executor("inprocess"), InProcess)
    with pytest.raises(ValueError, match=r"argument `executor` must be one of inprocess, ray.*received 'dask'"):
        resolve_executor("dask")
    with pytest.raises(TypeError, match=r"argument `executor` must be None.*received int"):
        resolve_executor(3)
    with pytest.raises(ValueError, match="argument `retries` must be an int >= 0"):
        RayExecutor(retries=-1)
    with pytest.raises(ValueError, match="argument `workers` must be None or an int >= 1"):
        RayExecutor(workers=0)
    with pytest.raises(ValueError, match=r"run_lottery: argument\(s\) `on_train_begin` act on the model in this process"):
        run_lottery("lenet_300_100", "digits", executor="ray", on_train_begin=lambda *a: None)
