"""The LeNet-300-100 fixtures of the step-time benchmarks (bench_pruning, bench_sparse_training): the Keras 3
model, and PyTorch and JAX batches (tf.data batches cost as much as the step itself on PyTorch and made JAX's
step time swing from fit to fit, so the same batches come from tensors made once). Import after Keras (the
benchmarks pick its backend first)."""

from __future__ import annotations

import keras
import numpy as np

SIZES = (784, 300, 100, 10)


def lenet(seed: int) -> keras.Model:
    """LeNet-300-100 (ReLU, logits), Adam 1e-3, seeded."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((SIZES[0],))] + [keras.layers.Dense(n, activation="relu") for n in SIZES[1:-1]]
                             + [keras.layers.Dense(SIZES[-1])])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def torch_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> object:
    """The same batches as a ``torch`` ``DataLoader`` that cycles through tensors made once."""
    import torch

    batches = [(torch.from_numpy(x[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size]))
               for i in range(0, len(x), batch_size)]

    class Cycle(torch.utils.data.IterableDataset):
        def __iter__(self):  # noqa: ANN204
            while True:
                yield from batches

    return torch.utils.data.DataLoader(Cycle(), batch_size=None)


def jax_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> object:
    """The same batches as a generator that cycles through JAX arrays made once."""
    import jax.numpy as jnp

    batches = [(jnp.asarray(x[i:i + batch_size]), jnp.asarray(y[i:i + batch_size])) for i in range(0, len(x), batch_size)]

    def cycle():  # noqa: ANN202
        while True:
            yield from batches

    return cycle()
