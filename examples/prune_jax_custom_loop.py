"""Magnitude pruning in a hand-written JAX training loop (``stateless_call`` / ``stateless_apply``).

A jitted JAX step is a pure function of the state it is given. The pruning masks are applied by
the weights' constraints inside ``optimizer.stateless_apply``, which maps only the trainable and
the optimizer's own variables to that state: bind the masks to the optimizer first, and they
travel with the optimizer variables, so a mask update reaches the compiled step without
re-tracing it. The schedule's update runs on the host (``pruner.step``): write the state back to
the variables before it and read it again after it.

    KERAS_BACKEND=jax python examples/prune_jax_custom_loop.py      # ~10 s
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasinit import pruning  # noqa: E402
from kerasinit.pruning.optimizer_state import bind  # noqa: E402


def train_pruned(model: keras.Model, pruner: pruning.Pruner, x: np.ndarray, y: np.ndarray, steps: int,
                 batch_size: int = 32) -> list[int]:
    """Train ``model`` (compiled: its optimizer and loss are used) for ``steps`` steps; return the update steps."""
    import jax

    optimizer, loss_fn = model.optimizer, model.loss
    optimizer.build(model.trainable_variables)
    bind(optimizer, pruner.mask_variables)  # the masks become optimizer state
    groups = (model.trainable_variables, model.non_trainable_variables, optimizer.variables)

    def loss_of(trainable, non_trainable, xb, yb):  # noqa: ANN001, ANN202
        pred, non_trainable = model.stateless_call(trainable, non_trainable, xb, training=True)
        return loss_fn(yb, pred), non_trainable

    @jax.jit
    def train_step(state, xb, yb):  # noqa: ANN001, ANN202
        trainable, non_trainable, opt_vars = state
        (_, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable, non_trainable, xb, yb)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return trainable, non_trainable, opt_vars

    def read():  # noqa: ANN202
        return tuple([v.value for v in group] for group in groups)

    def write(state):  # noqa: ANN001, ANN202
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)

    updates, state = [], read()
    for step in range(steps):
        if pruner.schedule.should_prune(step):
            write(state)
            pruner.step(step)  # new masks by magnitude, pruned weights zeroed, in the variables
            updates.append(step)
            state = read()
        i = (step * batch_size) % (len(x) - batch_size + 1)
        state = train_step(state, x[i:i + batch_size], y[i:i + batch_size])
    write(state)
    return updates


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(512, 20)).astype("float32"), rng.integers(0, 3, 512)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruner = pruning.Pruner(model, pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=200, frequency=20))
    updates = train_pruned(model, pruner, x, y, steps=240)
    print(f"mask updates at steps {updates}")
    print(pruning.sparsity_report(model).to_string(index=False))


if __name__ == "__main__":
    main()
