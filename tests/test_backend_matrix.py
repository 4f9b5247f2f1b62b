"""Every feature on TensorFlow, JAX and PyTorch (tests/backend_features.py), and the README table made from it.

Each backend runs in a fresh interpreter (``KERAS_BACKEND`` is read once per process). A check
listed in ``REFUSED`` must fail with the clear error, never pass silently or crash otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import backend_features as bf
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("backend", bf.BACKENDS)
def test_every_feature_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(Path(bf.__file__))], capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results) == set(bf.FEATURES)
    failed = {k: v["detail"] for k, v in results.items() if not v["ok"] and (k, backend) not in bf.REFUSED}
    assert not failed, json.dumps(failed, indent=1)
    for (feature, refused_on), _ in bf.REFUSED.items():
        if refused_on == backend:  # refused with a clear error naming the backend, not a crash elsewhere
            assert results[feature]["detail"].startswith("ValueError") and backend in results[feature]["detail"]


def test_readme_feature_table_is_the_tested_one():
    readme = (ROOT / "README.md").read_text()
    assert bf.table() in readme, "README's feature table is stale: paste `python tests/backend_features.py --table`"
