"""Whether compiling the in-step mask updates pays for itself in a fit (issue 26).

The in-step path (:mod:`kerasinit.pruning.incremental`) costs a one-off compilation, then little per
update; the host path costs one :meth:`Pruner.update_masks` per update and nothing up front. So, for a
fit about to start,

    in-step  iff  U · t_host  >  t_compile,

* ``U``: the updates of this fit the step would make itself (not each epoch's first, done on the host
  either way, nor the steps whose decrement is too large for it, :attr:`IncrementalPlan.big`);
* ``t_host``: one host update, timed on the spot: every pruned weight read back and selected by
  magnitude as ``update_masks`` does, plus writing masks and weights back (``WRITE_SHARE`` of it);
* ``t_compile``: ``COMPILE_SECONDS[backend]``, a base and a cost per distinct compiled update
  (weights of one shape share one, :attr:`IncrementalPlan.computations`), measured on this project's
  benchmark machine (``benchmarks/bench_real_models.py``: ~0.9 s per update under XLA on TensorFlow,
  ~0.2 s per update within JAX's step).

``KERASINIT_COMPILE_SECONDS="base,per_group"`` in the environment replaces the estimate (``"0,0"``:
always compile, as the test suite does to exercise the in-step path on tiny models). A plan an
earlier fit of the same callback compiled costs nothing more and is kept. Short runs and
aggressive schedules (a 40-step fine-tuning of a pretrained model: ``U`` small, most steps too large
for the step) stay on the host; long runs with small per-step decrements compile.
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras

from kerasinit._arrays import to_numpy
from kerasinit.pruning.masks import magnitude_selection

#: backend -> (seconds, seconds per candidate group) to compile the in-step update
COMPILE_SECONDS = {"tensorflow": (1.0, 0.9), "jax": (0.5, 0.2)}
#: writing the masks and weights back, as a share of reading and selecting (``update_masks``)
WRITE_SHARE = 0.3


def host_update_seconds(pruner: Any, sparsity: float) -> float:
    """Time one host update's work for ``pruner`` at ``sparsity`` without changing anything."""
    start = time.perf_counter()
    for w in pruner.weights:
        magnitude_selection(to_numpy(w.variable), pruner.layer_sparsity(w, sparsity))
    return (time.perf_counter() - start) * (1.0 + WRITE_SHARE)


def compile_seconds(plan: Any) -> float:
    base, per_group = COMPILE_SECONDS.get(keras.backend.backend(), (1.0, 0.9))
    override = os.environ.get("KERASINIT_COMPILE_SECONDS")
    if override:
        try:
            base, per_group = (float(v) for v in override.split(","))
        except ValueError:
            raise ValueError(f"environment variable KERASINIT_COMPILE_SECONDS must be 'base,per_group' in seconds "
                             f"(e.g. '1.0,0.9'); received {override!r}.") from None
    return base + per_group * plan.computations


def in_step_updates(plan: Any, first: int, last: int, epochs: int) -> int:
    """The scheduled updates in steps ``first..last`` the step would make itself (each epoch's first on the host)."""
    steps = [int(s) for s in plan.plans[0].steps] if plan.plans else []
    return max(0, sum(1 for s in steps if first < s <= last and s not in plan.big) - max(epochs - 1, 0))


def worth_compiling(plan: Any, pruner: Any, sparsity: float, first: int, last: int, epochs: int) -> tuple[bool, str]:
    """``(in-step?, why)`` for a fit of steps ``first..last`` (see the module's rule)."""
    updates = in_step_updates(plan, first, last, epochs)
    if updates == 0:
        return False, "no update of this fit would run inside the step (each is an epoch's first or too large)"
    host, build = host_update_seconds(pruner, sparsity), compile_seconds(plan)
    verdict = updates * host > build
    sign = ">" if verdict else "<="
    return verdict, (f"{updates} in-step updates x {host * 1000:.1f} ms on the host {sign} ~{build:.1f} s to compile "
                     "the in-step update")


__all__ = ["COMPILE_SECONDS", "compile_seconds", "host_update_seconds", "in_step_updates", "worth_compiling"]
