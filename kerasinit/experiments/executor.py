"""Where the independent trainings of a sweep run: in this process (the default) or as Ray tasks.

An experiment (``run_compare``, ``run_lottery``, ``run_prune_at_init``, ``instability``) describes each
training as a :class:`Task`: a picklable description (the importable name of a task function and its
keyword arguments: model spec, dataset, initializer, seed, sparsity, round, masks...). An
:class:`Executor` runs the tasks and hands every :class:`Outcome` back to the experiment's driver,
which writes it to the run folder (so ``resume`` works across executors) and may answer with
follow-up tasks (a lottery round's ticket and controls once the previous ticket is trained):
the dependency graph is built as results arrive.

- :class:`InProcess` (``executor=None`` or ``"inprocess"``): the tasks one after the other in their
  ``order`` (exactly the sequential loop the experiments had: same order, same numbers); a task
  that raises stops the sweep as before.
- :class:`RayExecutor` (``executor="ray"``): every task is a Ray task (``ray.init()`` locally when
  Ray is not running and no ``address`` is given; ``address="auto"`` or ``"ray://host:10001"`` for
  a cluster) with ``num_cpus``/``num_gpus`` each, at most ``workers`` in flight. Each worker pins
  its threads to its ``num_cpus`` (OMP/OpenBLAS/MKL, TensorFlow intra/inter-op, XLA's Eigen) and
  runs the driver's Keras backend, with TensorFlow's op determinism on (``TF_DETERMINISTIC_OPS=1``):
  on TensorFlow/CPU a task's numbers are bit-identical to an in-process run with op determinism on
  (a default in-process run differs in the last bits of some kernels; see docs/scale.md). JAX on CPU is
  deterministic too; PyTorch's CPU kernels are for these models, but neither is guaranteed by their
  authors on GPU. A task that raises is retried ``retries`` times, then reported by name
  (:class:`Outcome` with ``error``) while the other tasks complete.

Large read-only arguments (the dataset, θ0) are wrapped in :class:`Shared`: Ray stores them once in
its object store instead of once per task.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

EXECUTORS = ("inprocess", "ray")
INSTALL_HINT = "pip install 'kerasinit[ray]'"


@dataclass(frozen=True, eq=False)
class Shared:
    """A large read-only task argument (dataset, weights) sent once per executor, not once per task."""

    value: Any


@dataclass(eq=False)
class Task:
    """One independent training: ``fn`` (``"module:function"``) called with ``kwargs``.

    ``name``: how the tables and warnings name it (``"he_normal seed 1"``); ``key``: the experiment's
    key of its result; ``epochs``: what it counts for on the progress bar; ``order``: the in-process
    order (smallest first), also the submission priority on Ray."""

    name: str
    fn: str
    kwargs: dict[str, Any]
    key: Any = None
    epochs: int = 0
    order: tuple[Any, ...] = ()


@dataclass
class Outcome:
    """What became of a task: its ``value``, or the ``error`` (``"RuntimeError: ..."``) after ``attempts`` tries."""

    task: Task
    value: Any = None
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure(self) -> dict[str, Any]:
        """The JSON record of a failed task (results.json, the table's notes)."""
        return {"task": self.task.name, "error": self.error, "attempts": self.attempts}


#: ``on_done(outcome)`` -> follow-up tasks (that depend on this one's result)
OnDone = Callable[[Outcome], Iterable[Task] | None]


class TaskFailedWarning(RuntimeWarning):
    """A task of a sweep failed after its retries; the other tasks' results were kept."""


@runtime_checkable
class Executor(Protocol):
    """Runs tasks, calling ``on_done`` in this process for each as it finishes (follow-ups are queued)."""

    name: str

    def run(self, tasks: Iterable[Task], on_done: OnDone, bar: Any = None) -> None: ...


def call(fn: str, kwargs: Mapping[str, Any], callbacks: Sequence[Any] = ()) -> Any:
    """Import ``fn`` (``"module:function"``) and call it with ``kwargs`` (``Shared`` unwrapped) and
    ``callbacks`` appended to its own: the same code in this process and in a Ray worker."""
    module, _, name = fn.partition(":")
    function = getattr(importlib.import_module(module), name)
    args = {k: v.value if isinstance(v, Shared) else v for k, v in kwargs.items()}
    if callbacks:
        args["callbacks"] = [*args.get("callbacks", ()), *callbacks]
    return function(**args)


class InProcess:
    """The tasks one after the other in this process, smallest ``order`` first: the experiments' loop
    as it always was (a task that raises stops the sweep; Ctrl-C too)."""

    name = "inprocess"

    def run(self, tasks: Iterable[Task], on_done: OnDone, bar: Any = None) -> None:
        counter = itertools.count()
        ready = [(t.order, next(counter), t) for t in tasks]
        heapq.heapify(ready)
        tick = bar.callback() if bar is not None else None
        while ready:
            task = heapq.heappop(ready)[2]
            if bar is not None:
                bar.describe(task.name, epochs=task.epochs)
            value = call(task.fn, task.kwargs, [tick] if tick is not None else [])
            for follow in on_done(Outcome(task, value)) or ():
                heapq.heappush(ready, (follow.order, next(counter), follow))

    def __repr__(self) -> str:
        return "InProcess()"


def worker_env(num_cpus: int | float, backend: str | None = None) -> dict[str, str]:
    """The environment of a worker task: threads pinned to ``num_cpus``, the driver's Keras backend and
    ``KERASINIT_*``/``TF_CPP_MIN_LOG_LEVEL`` settings, TensorFlow's op determinism on."""
    n = str(max(1, int(num_cpus)))
    env = {name: n for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    xla = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if n == "1" else \
        f"intra_op_parallelism_threads={n}"
    env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla).strip()
    env["TF_DETERMINISTIC_OPS"] = "1"
    if backend is None:
        import keras

        backend = keras.backend.backend()
    env["KERAS_BACKEND"] = backend
    for name, value in os.environ.items():
        if name.startswith("KERASINIT_") or name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
            env[name] = value
    return env


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(f"executor='ray' needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _remote_call(fn: str, kwargs: dict[str, Any], **shared: Any) -> Any:
    """The body of every Ray task (Ray resolves the ``shared`` object references before the call)."""
    return call(fn, {**kwargs, **shared})


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".strip()


class RayExecutor:
    """Every task as a Ray task; see the module docstring.

    ``address``: ``None`` (Ray already running in this process, else a local ``ray.init()`` shut
    down at the end), ``"auto"`` (the cluster this machine belongs to) or a URL (``"ray://head:10001"``).
    ``num_cpus``/``num_gpus``: resources of each task (its threads are pinned to ``num_cpus``).
    ``retries``: further attempts of a task that raises. ``workers``: tasks in flight at once
    (default: the cluster's CPUs / ``num_cpus``, or its GPUs / ``num_gpus`` with GPUs)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0, retries: int = 1,
                 workers: int | None = None) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"argument `address` must be None, 'auto' or a Ray address such as 'ray://head:10001'; "
                            f"received {address!r}.")
        for name, value, low in (("num_cpus", num_cpus, 0), ("num_gpus", num_gpus, 0)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ValueError(f"argument `{name}` must be a number >= {low}; received {value!r}.")
        if num_cpus == 0 and num_gpus == 0:
            raise ValueError("arguments `num_cpus` and `num_gpus` are both 0: a task needs some resource.")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"argument `retries` must be an int >= 0; received {retries!r}.")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"argument `workers` must be None or an int >= 1; received {workers!r}.")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.retries, self.workers = retries, workers

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, num_gpus={self.num_gpus}, "
                f"retries={self.retries}, workers={self.workers})")

    def _slots(self, ray: Any) -> int:
        if self.workers is not None:
            return self.workers
        resources = ray.cluster_resources()
        if self.num_gpus:
            return max(1, int(resources.get("GPU", 1) // self.num_gpus))
        return max(1, int(resources.get("CPU", 1) // max(self.num_cpus, 1e-9)))

    def run(self, tasks: Iterable[Task], on_done: OnDone, bar: Any = None) -> None:
        ray = _ray()
        started = False
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     **({"num_cpus": self.workers * max(1, int(self.num_cpus))} if self.address is None and self.workers
                        else {}))
            started = True
        remote = ray.remote(_remote_call).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.retries, retry_exceptions=True,
            runtime_env={"env_vars": worker_env(self.num_cpus)})
        refs: dict[int, Any] = {}  # id(Shared) -> its ObjectRef, one per value

        def put(value: Shared) -> Any:
            if id(value) not in refs:
                refs[id(value)] = (ray.put(value.value), value)  # (keeps the Shared alive: ids stay unique)
            return refs[id(value)][0]

        counter = itertools.count()
        ready = [(t.order, next(counter), t) for t in tasks]
        heapq.heapify(ready)
        inflight: dict[Any, Task] = {}
        done = failed = 0
        slots = self._slots(ray)

        def show() -> None:
            if bar is not None:
                bar.sweep(done=done, running=len(inflight), failed=failed, waiting=len(ready))

        try:
            while ready or inflight:
                while ready and len(inflight) < slots:
                    task = heapq.heappop(ready)[2]
                    plain = {k: v for k, v in task.kwargs.items() if not isinstance(v, Shared)}
                    shared = {k: put(v) for k, v in task.kwargs.items() if isinstance(v, Shared)}
                    inflight[remote.remote(task.fn, plain, **shared)] = task
                show()
                finished, _ = ray.wait(list(inflight), num_returns=1)
                for ref in finished:
                    task = inflight.pop(ref)
                    try:
                        outcome = Outcome(task, ray.get(ref), attempts=1)
                        done += 1
                    except ray.exceptions.RayTaskError as exc:
                        outcome = Outcome(task, error=_error_text(exc), attempts=1 + self.retries)
                        failed += 1
                    if bar is not None:
                        bar.advance(task.epochs)
                    for follow in on_done(outcome) or ():
                        heapq.heappush(ready, (follow.order, next(counter), follow))
            show()
        except BaseException:
            for ref in inflight:
                ray.cancel(ref, force=True)
            raise
        finally:
            refs.clear()
            if started:
                ray.shutdown()


def resolve_executor(executor: Any) -> Executor:
    """``None``/``"inprocess"`` -> :class:`InProcess`; ``"ray"`` -> :class:`RayExecutor` (Ray must be
    installed); an :class:`Executor` instance as it is."""
    if executor is None or executor == "inprocess":
        return InProcess()
    if executor == "ray":
        _ray()
        return RayExecutor()
    if isinstance(executor, str):
        raise ValueError(f"argument `executor` must be one of {', '.join(EXECUTORS)}, an Executor instance or None; "
                         f"received {executor!r}.")
    if not isinstance(executor, Executor):
        raise TypeError(f"argument `executor` must be None, {' or '.join(repr(e) for e in EXECUTORS)} or an Executor "
                        f"(InProcess(), RayExecutor(...)); received {type(executor).__name__}.")
    return executor


def in_process(executor: Executor) -> bool:
    return isinstance(executor, InProcess)


def check_local_only(executor: Executor, owner: str, **given: Any) -> None:
    """Arguments that live in this process (callbacks, a tf.distribute strategy, hooks receiving the model)
    cannot go to Ray workers: a ValueError naming them."""
    if in_process(executor):
        return
    names = [name for name, value in given.items() if value not in (None, (), [])]
    if names:
        raise ValueError(f"{owner}: argument(s) {', '.join(f'`{n}`' for n in names)} act on the model in this "
                         f"process and cannot be sent to {executor.name} workers; run with executor=None (in "
                         "process), or drop them.")


def warn_failed(owner: str, failures: Sequence[Outcome]) -> None:
    """One :class:`TaskFailedWarning` naming every failed task (the results keep the others)."""
    if failures:
        what = "; ".join(f"{f.task.name} ({f.error}, {f.attempts} attempt{'s' * (f.attempts > 1)})" for f in failures)
        warnings.warn(f"{owner}: {len(failures)} task(s) failed and are missing from the results: {what}. "
                      "Rerun with the same `out` to retry only them.", TaskFailedWarning, stacklevel=3)


def failure_notes(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Table footnotes for the failed tasks of a results record."""
    return [f"failed: {f['task']} after {f['attempts']} attempt{'s' * (f['attempts'] > 1)} ({f['error']}); "
            "missing from the table (rerun with the same out to retry it)" for f in failures]


# -- a per-process cache of built models (tasks of one lottery seed reuse its compiled model) ---------------

_CACHE: OrderedDict[Any, Any] = OrderedDict()
CACHE_SIZE = 2


def cached(key: Any, build: Callable[[], Any]) -> Any:
    """``build()`` once per ``key`` in this process (the last :data:`CACHE_SIZE` keys are kept)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = _CACHE[key] = build()
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def forget(prefix: Any) -> None:
    """Drop the cached entries whose key starts with ``prefix`` (an experiment's token)."""
    for key in [k for k in _CACHE if isinstance(k, tuple) and k[:1] == (prefix,)]:
        del _CACHE[key]


__all__ = ["EXECUTORS", "Executor", "InProcess", "Outcome", "RayExecutor", "Shared", "Task", "TaskFailedWarning",
           "cached", "call", "check_local_only", "failure_notes", "forget", "resolve_executor", "warn_failed",
           "worker_env"]
