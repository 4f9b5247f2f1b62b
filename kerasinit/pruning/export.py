"""``export(model, path, format)``: a pruned model as a deployable file, checked against Keras, with what it costs.

1. Strip the masks (:func:`~kerasinit.pruning.strip`; ``shrink=True`` also removes dead channels).
2. Write ``format``:

   * ``"tflite"``: TFLite flatbuffer (float32) converted by TensorFlow from a SavedModel; ``sparse=True``
     adds ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``, which stores sparse weights in TFLite's sparse
     tensor format (a CSR-like encoding, the values plus uint8/uint16/int32 indices);
   * ``"keras"``: the stripped model's ``.keras`` file (loads with plain Keras);
   * ``"saved_model"``: ``model.export(path)`` (TensorFlow SavedModel folder, endpoint ``serve``).

   ``.keras`` works on every backend. TFLite and SavedModel conversion run in TensorFlow: on the
   TensorFlow backend in this process; on JAX or PyTorch the stripped model is saved as ``.keras``
   and rebuilt on TensorFlow in a subprocess (the same converter, the same settings; TensorFlow must
   be installed), so the three backends give the same file.
3. Run the exported file on a probe batch (``probe``, or a seeded standard-normal batch of 2 of the
   model's input shape) and compare with the stripped Keras model's outputs: ``|a − b| ≤ tolerance ·
   (1 + |b|)`` everywhere, else :class:`ExportMismatchError` and nothing is written at ``path``.
   TFLite runs in LiteRT's interpreter (``ai-edge-litert``) with XNNPack, as on a device.
4. Report (:class:`ExportReport`): per prunable weight its sparsity in Keras and in the file, how it is
   stored, its bytes, the op reading it and whether that op runs sparse; the file's bytes and gzip
   bytes. "Runs sparse" is read, not guessed: TFLite's FULLY_CONNECTED kernel reads 1×4-block weights
   (Keras Dense kernels with ``(4, 1)`` blocks) sparse; every other sparse weight is expanded by a
   DENSIFY op at load; XNNPack's sparse kernels (1×1 convolutions, Elsen et al., "Fast Sparse
   ConvNets", CVPR 2020) are off on x86 CPUs with AVX and their use is not reported by the
   delegate, which the report says (see :mod:`kerasinit.backend.tflite`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.selection import select
from kerasinit.pruning.strip import strip

FORMATS = ("tflite", "keras", "saved_model")
SUFFIXES = {"tflite": ".tflite", "keras": ".keras"}
#: batch size of the default probe
PROBE_BATCH = 2


class ExportMismatchError(ValueError):
    """The exported model's outputs differ from the stripped Keras model's beyond the tolerance."""


class ExportWarning(UserWarning):
    """An export that worked but does not give what was asked (e.g. ``sparse=True`` and nothing stored sparse)."""


@dataclass
class ExportReport:
    """What :func:`export` wrote: sizes, the equality check, and per prunable weight how it is stored and run."""

    path: str
    format: str
    sparse: bool
    shrink: bool
    backend: str
    converted_in: str
    bytes: int
    gzip_bytes: int
    parameters: int
    nonzeros: int
    probe_shape: tuple[int, ...]
    max_abs_diff: float
    tolerance: float
    xnnpack: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sparse_layers(self) -> list[str]:
        """Names of the layers whose op runs its weight sparse (``runs_sparse`` starting with "yes")."""
        return [r["layer"] for r in self.layers if str(r["runs_sparse"]).startswith("yes")]

    def title(self) -> str:
        return (f"{self.path} ({self.format}{', sparse encoding' if self.format == 'tflite' and self.sparse else ''}"
                f"{', shrunk' if self.shrink else ''}): {self.bytes:,} bytes, gzip {self.gzip_bytes:,}; "
                f"{self.nonzeros:,} of {self.parameters:,} prunable weights nonzero; outputs equal to Keras "
                f"within {self.tolerance:g} (max |diff| {self.max_abs_diff:.2e}, probe {self.probe_shape})")

    def display_rows(self) -> list[dict[str, str]]:
        return [{"layer": r["layer"], "weight": r["weight"], "shape": "x".join(map(str, r["shape"])),
                 "sparsity": f"{r['sparsity']:.3f}",
                 "in file": "-" if r["file_sparsity"] is None else f"{r['file_sparsity']:.3f}",
                 "stored": r["stored"], "bytes": "-" if r["bytes"] is None else f"{r['bytes']:,}",
                 "op": r["op"], "runs sparse": r["runs_sparse"]} for r in self.layers]

    def all_notes(self) -> list[str]:
        return [f"XNNPack: {self.xnnpack}", *self.notes] if self.format == "tflite" else list(self.notes)

    def __str__(self) -> str:
        rows = self.display_rows()
        lines = [self.title()]
        if rows:
            cols = list(rows[0])
            width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
            lines.append("  ".join(c.ljust(width[c]) for c in cols).rstrip())
            lines += ["  ".join(r[c].ljust(width[c]) for c in cols).rstrip() for r in rows]
        return "\n".join(lines + self.all_notes())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["probe_shape"] = list(self.probe_shape)
        data["sparse_layers"] = self.sparse_layers
        for r in data["layers"]:
            r["shape"] = list(r["shape"])
        return data


# --- checks ------------------------------------------------------------------------------------------------


def _check(model: Any, path: Any, format: Any, sparse: Any, shrink: Any, tolerance: Any, overwrite: Any) -> str:
    if not isinstance(model, keras.Model):
        raise TypeError(f"export: argument `model` must be a keras.Model; received {type(model).__name__}.")
    if format not in FORMATS:
        raise ValueError(f"export: argument `format` must be one of {', '.join(map(repr, FORMATS))}; received {format!r}.")
    for name, value in (("sparse", sparse), ("shrink", shrink), ("overwrite", overwrite)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"export: argument `{name}` must be True or False; received {value!r}.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ValueError(f"export: argument `tolerance` must be a number in (0, 1); received {tolerance!r}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export: argument `path` must be a file path (str or os.PathLike); received "
                        f"{type(path).__name__}.")
    path = os.fspath(path)
    suffix = SUFFIXES.get(format)
    if suffix and not path.lower().endswith(suffix):
        raise ValueError(f"export: argument `path` must end with {suffix} for format={format!r}; received {path!r}.")
    if format == "saved_model" and path.lower().endswith((".keras", ".tflite", ".h5")):
        raise ValueError(f"export: format='saved_model' writes a folder; argument `path` {path!r} looks like a file "
                         f"(give a folder name, or format={'keras' if path.lower().endswith('.keras') else 'tflite'!r}).")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"export: argument `path` {path!r} exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"export: argument `path` {path!r}: folder {parent!r} does not exist.")
    if format != "keras" and (len(model.inputs or ()) != 1 or len(model.outputs or ()) != 1):
        raise ValueError(f"export: format={format!r} is supported for models with one input and one output; "
                         f"{model.name!r} has {len(model.inputs or ())} inputs and {len(model.outputs or ())} outputs "
                         "(export it with format='keras').")
    return path


def _probe(model: keras.Model, probe: Any, seed: int) -> Any:
    """The given probe as float32 arrays, or a seeded standard-normal batch of the model's input shape."""
    if probe is not None:
        return keras.tree.map_structure(lambda x: np.asarray(to_numpy(x)), probe)
    if not model.inputs:
        raise ValueError(f"export: model {model.name!r} has no symbolic inputs (a subclassed model): pass `probe`, "
                         "a batch of its inputs.")
    rng = np.random.default_rng(seed)

    def draw(t: Any) -> np.ndarray:
        shape = (PROBE_BATCH, *(1 if d is None else d for d in t.shape[1:]))
        if "int" in str(t.dtype):
            return rng.integers(0, 2, size=shape).astype(str(t.dtype))
        return rng.standard_normal(shape).astype("float32")

    arrays = [draw(t) for t in model.inputs]
    return arrays[0] if len(arrays) == 1 else arrays


def _outputs(model: keras.Model, x: Any) -> list[np.ndarray]:
    return [np.asarray(to_numpy(y), dtype=np.float64) for y in keras.tree.flatten(model(x, training=False))]


def _compare(got: list[np.ndarray], ref: list[np.ndarray], tolerance: float, what: str) -> float:
    if len(got) != len(ref) or any(a.shape != b.shape for a, b in zip(got, ref, strict=False)):
        raise ExportMismatchError(f"export: the {what} returns outputs of shapes {[a.shape for a in got]}, the stripped "
                                  f"Keras model {[b.shape for b in ref]}.")
    worst = max((float(np.max(np.abs(a - b))) if a.size else 0.0) for a, b in zip(got, ref, strict=True))
    bad = [not np.all(np.abs(a - b) <= tolerance * (1 + np.abs(b))) for a, b in zip(got, ref, strict=True)]
    if any(bad):
        raise ExportMismatchError(f"export: the {what}'s outputs differ from the stripped Keras model's by up to "
                                  f"{worst:.3g}, beyond tolerance={tolerance:g} (|a - b| <= tolerance * (1 + |b|)); "
                                  "nothing was written. Raise `tolerance` if that is float rounding "
                                  "(e.g. BatchNorm folded into convolutions).")
    return worst


# --- per layer ---------------------------------------------------------------------------------------------


def _keras_rows(model: keras.Model) -> list[dict[str, Any]]:
    rows = []
    for w in select(model):
        values = to_numpy(w.variable)
        nonzeros = int(np.count_nonzero(values))
        rows.append({"layer": w.layer.name, "weight": w.attr, "shape": tuple(values.shape), "size": int(values.size),
                     "nonzeros": nonzeros, "sparsity": 1.0 - nonzeros / values.size if values.size else 0.0,
                     "abs_sum": float(np.abs(values.astype(np.float64)).sum()), "file_sparsity": None,
                     "stored": "dense", "bytes": None, "op": "-", "runs_sparse": "no: dense format"})
    return rows


def _match(rows: list[dict[str, Any]], tensors: list[dict[str, Any]]) -> list[tuple[dict, dict | None]]:
    """Each Keras weight's tensor in the flatbuffer: same size and nonzeros, and the same sum of |w| (else, as
    when BatchNorm was folded into it, the first unused tensor of the same size and nonzeros, in graph order)."""
    candidates = [t for t in tensors if t["readers"]]
    used: set[int] = set()
    pairs = []
    for exact in (True, False):
        for r in rows:
            if any(p[0] is r for p in pairs):
                continue
            for t in candidates:
                if t["index"] in used or t["size"] != r["size"] or t["nonzeros"] != r["nonzeros"]:
                    continue
                if exact and not np.isclose(t["abs_sum"], r["abs_sum"], rtol=1e-5, atol=1e-6):
                    continue
                used.add(t["index"])
                pairs.append((r, t))
                break
    found = {id(p[0]) for p in pairs}
    return [next((p for p in pairs if p[0] is r), (r, None)) if id(r) in found else (r, None) for r in rows]


def _runs_sparse(t: dict[str, Any], delegated: set[int], xnnpack: bool | None) -> tuple[str, str]:
    """(op, runs-sparse verdict) of a flatbuffer weight tensor."""
    readers = t["readers"]
    op = ",".join(sorted({name for name, _, _ in readers})) or "-"
    if not t["sparse"]:
        return op, "no: stored dense"
    direct = [(name, i) for name, via, i in readers if not via]
    if direct:
        on_cpu = [name for name, i in direct if i not in delegated]
        if on_cpu:
            return op, f"yes: TFLite's sparse {on_cpu[0]} kernel"
        return op, "no: delegated op expands it"
    all_delegated = all(i in delegated for _, _, i in readers)
    if not all_delegated:
        return op, "no: DENSIFY expands it at load"
    one_by_one = op == "CONV_2D" and len(t["shape"]) == 4 and t["shape"][1:3] == (1, 1)
    if not one_by_one:
        return op, "no: XNNPack expands it (its sparse path is 1x1 conv only)"
    if xnnpack is False:
        return op, "no: XNNPack expands it (sparse kernels off on AVX CPUs)"
    return op, "unknown: XNNPack may run it sparse (not reported)"


def _tflite_layers(rows: list[dict[str, Any]], content: bytes, notes: list[str]) -> tuple[list[dict[str, Any]], str]:
    from kerasinit.backend import tflite

    tensors = tflite.flatbuffer_tensors(content)
    delegated, _ = tflite.delegated_ops(content)
    can, why = tflite.xnnpack_sparse_kernels()
    out = []
    for r, t in _match(rows, tensors):
        row = dict(r)
        if t is None:
            row.update(stored="?", op="?", runs_sparse="unknown: weight not found in the file")
            notes.append(f"{r['layer']}/{r['weight']}: no tensor of the file has its size and nonzeros (transformed "
                         "by the converter), so its storage is not reported")
        else:
            block = f" {'x'.join(map(str, t['block']))} blocks" if t["block"] else ""
            op, verdict = _runs_sparse(t, delegated, can)
            row.update(file_sparsity=1.0 - t["nonzeros"] / t["size"] if t["size"] else 0.0,
                       stored=f"sparse{block}" if t["sparse"] else "dense", bytes=t["bytes"], op=op, runs_sparse=verdict)
        out.append(row)
    return out, why


# --- export ------------------------------------------------------------------------------------------------


def export(model: keras.Model, path: str | os.PathLike, format: str = "tflite", sparse: bool = True,
           shrink: bool = False, probe: Any = None, tolerance: float = 1e-5, overwrite: bool = False,
           seed: int = 0) -> ExportReport:
    """Strip (and with ``shrink=True`` shrink) ``model``, write it to ``path`` as ``format``, check it, report.

    ``format``: ``"tflite"`` (``path`` ends with ``.tflite``; ``sparse=True`` stores sparse weights in
    TFLite's sparse encoding, ``sparse=False`` the same conversion without it), ``"keras"`` (``.keras``)
    or ``"saved_model"`` (a folder). The exported model's outputs on ``probe`` (default: a standard-normal
    batch of 2, seeded by ``seed``) must equal the stripped Keras model's within ``|a − b| ≤ tolerance ·
    (1 + |b|)``, else :class:`ExportMismatchError` and ``path`` is left as it was. An existing ``path``
    is replaced only with ``overwrite=True``. ``model`` itself is not changed. See the module docstring.
    """
    path = _check(model, path, format, sparse, shrink, tolerance, overwrite)
    stripped = strip(model, shrink=bool(shrink))
    x = _probe(stripped, probe, seed)
    ref = _outputs(stripped, x)
    rows = _keras_rows(stripped)
    notes: list[str] = []
    backend = keras.config.backend()
    converted_in = "this process" if format == "keras" or backend == "tensorflow" else "a TensorFlow subprocess"
    xnnpack = ""
    parent = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=parent, prefix=".kerasinit-export-") as tmp:
        staged = os.path.join(tmp, os.path.basename(path.rstrip(os.sep)) or "model")
        if format == "keras":
            stripped.save(staged)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reloaded = keras.saving.load_model(staged, compile=False)
            max_diff = _compare(_outputs(reloaded, x), ref, tolerance, ".keras file (reloaded)")
            notes.append(".keras stores weights dense: the zeros cost full size, gzip shows their worth")
        else:
            max_diff = _convert_and_check(stripped, staged, format, bool(sparse), x, ref, tolerance, tmp)
            if format == "tflite":
                with open(staged, "rb") as f:
                    content = f.read()
                rows, xnnpack = _tflite_layers(rows, content, notes)
                _warn_if_not_sparse(rows, bool(sparse), notes)
            else:
                notes.append("SavedModel stores weights dense: the zeros cost full size, gzip shows their worth")
        from kerasinit.backend import tflite

        size, gz = tflite.file_size(staged), tflite.gzip_size(staged)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        os.replace(staged, path)
    for r in rows:
        r.pop("abs_sum", None)
        r.pop("size", None)
    return ExportReport(path=path, format=format, sparse=bool(sparse), shrink=bool(shrink), backend=backend,
                        converted_in=converted_in, bytes=size, gzip_bytes=gz,
                        parameters=sum(int(np.prod(r["shape"])) for r in rows),
                        nonzeros=sum(r["nonzeros"] for r in rows), probe_shape=tuple(np.shape(keras.tree.flatten(x)[0])),
                        max_abs_diff=max_diff, tolerance=float(tolerance), xnnpack=xnnpack, layers=rows, notes=notes)


def _convert_and_check(stripped: keras.Model, staged: str, format: str, sparse: bool, x: Any,
                       ref: list[np.ndarray], tolerance: float, tmp: str) -> float:
    """Write ``format`` at ``staged`` (through TensorFlow) and compare its outputs on ``x`` with ``ref``."""
    from kerasinit.backend import tflite

    probe = np.asarray(keras.tree.flatten(x)[0])
    if keras.config.backend() == "tensorflow":
        outputs = tflite.convert(stripped, staged, format, sparse, probe)
    else:
        source = os.path.join(tmp, "stripped.keras")
        stripped.save(source)
        outputs = tflite.convert_in_subprocess(source, staged, format, sparse, probe)
    if format == "tflite":
        try:
            with open(staged, "rb") as f:
                outputs = tflite.run_tflite(f.read(), probe)
        except ImportError as exc:
            raise ImportError("export: running the .tflite file needs LiteRT: pip install ai-edge-litert "
                              "(or kerasinit[deploy])") from exc
    what = "TFLite model (LiteRT, XNNPack)" if format == "tflite" else "SavedModel"
    return _compare([np.asarray(outputs, dtype=np.float64)], ref, tolerance, what)


def _warn_if_not_sparse(rows: list[dict[str, Any]], sparse: bool, notes: list[str]) -> None:
    pruned = [r for r in rows if r["sparsity"] >= 0.5]
    stored = [r for r in rows if str(r["stored"]).startswith("sparse")]
    if sparse and pruned and not stored:
        message = (f"sparse=True, yet no weight was stored sparse although {len(pruned)} have sparsity >= 0.5 "
                   "(TFLite's converter chose dense for all): the file is not smaller than dense")
        notes.append(message)
        warnings.warn(message, ExportWarning, stacklevel=3)
    if stored and not any(str(r["runs_sparse"]).startswith("yes") for r in rows):
        notes.append("sparse storage makes the file smaller; at run time every weight is expanded to dense (no op "
                     "runs sparse here), so expect dense latency")


__all__ = ["FORMATS", "ExportMismatchError", "ExportReport", "ExportWarning", "export"]
