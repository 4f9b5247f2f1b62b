"""PyTorch batches for the step-time benchmarks (bench_pruning, bench_sparse_training): tf.data batches cost
as much as the step itself on PyTorch, so the same batches come from a DataLoader over tensors made once."""

from __future__ import annotations

import numpy as np


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
