"""TensorFlow and LiteRT for :func:`kerasinit.pruning.export`: conversion, running, and what runs sparse.

Imported on first use only. Conversion needs TensorFlow and a Keras model on the TensorFlow
backend: from another backend, :func:`convert_in_subprocess` saves nothing itself but rebuilds the
stripped ``.keras`` file in a Python subprocess on ``KERAS_BACKEND=tensorflow`` (``python -m
kerasinit.backend.tflite``). Running a ``.tflite`` model needs only LiteRT (``ai-edge-litert``),
in any process.

What runs sparse in a ``.tflite`` model (read from the flatbuffer and the interpreter's nodes):

* ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY`` stores a sparse enough constant weight in the
  TACO-style sparse format (CSR-like ``dim_metadata``; blocks where the op has a block kernel).
  TFLite's own FULLY_CONNECTED kernel reads float weights with 1×4 blocks (four consecutive
  *inputs* of one output, i.e. a Keras Dense kernel ``(in, out)`` with blocks of shape ``(4, 1)``)
  sparse; every other sparse weight gets a DENSIFY op and is expanded once at load.
* XNNPack (LiteRT's default CPU delegate) takes DENSIFY'd weights, expands them and sets
  ``XNN_FLAG_HINT_SPARSE_INFERENCE``; its sparse kernels (SpMM in NCHW layout, Elsen et al. 2020)
  then run the 1×1 convolutions of a subgraph it can rewrite to NCHW (a 3×3 stride-2 first
  convolution, ≥ 2/3 sparsity). XNNPack itself turns them off on x86 CPUs with AVX ("dense
  inference is expected to be faster than sparse", ``xnn_is_chw_compatible_config``), and the
  delegate does not report whether the rewrite happened: we say which of the two holds.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

#: builtin op codes of the layers that hold prunable weights
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "TRANSPOSE_CONV", "BATCH_MATMUL")


# --- conversion (TensorFlow backend) ---------------------------------------------------------------------


def _saved_model(model: Any, path: str) -> None:
    """``model.export(path)`` without Keras's "Saved artifact" lines on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(path, format="tf_saved_model", verbose=False)


def tflite_bytes(model: Any, sparse: bool) -> bytes:
    """The ``.tflite`` flatbuffer of a Keras model on the TensorFlow backend (float32, no quantization);
    ``sparse=True`` adds ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY`` (sparse tensor encoding)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        _saved_model(model, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if sparse:
            converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        return converter.convert()


def write_saved_model(model: Any, path: str) -> None:
    _saved_model(model, path)


def run_saved_model(path: str, x: np.ndarray) -> np.ndarray:
    """The ``serve`` endpoint of a SavedModel on ``x``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # kept referenced while `serve` runs (it reads its variables)
    return np.asarray(loaded.serve(tf.constant(x)))


def convert(model: Any, out: str, format: str, sparse: bool, probe: np.ndarray) -> np.ndarray | None:
    """Write ``model`` (TensorFlow backend) to ``out`` as ``format``; the SavedModel's outputs on ``probe``
    (``None`` for tflite: :func:`run_tflite` runs it in any process)."""
    if format == "tflite":
        with open(out, "wb") as f:
            f.write(tflite_bytes(model, sparse))
        return None
    write_saved_model(model, out)
    return run_saved_model(out, probe)


def convert_in_subprocess(keras_path: str, out: str, format: str, sparse: bool, probe: np.ndarray) -> np.ndarray | None:
    """:func:`convert` of the saved ``keras_path`` in a subprocess on Keras's TensorFlow backend."""
    with tempfile.TemporaryDirectory() as tmp:
        probe_path, result = os.path.join(tmp, "probe.npy"), os.path.join(tmp, "out.npy")
        np.save(probe_path, probe)
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
        args = [sys.executable, "-m", "kerasinit.backend.tflite", keras_path, out, format, json.dumps(sparse),
                probe_path, result]
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-1:])
            raise RuntimeError(f"export: converting through TensorFlow (a subprocess on KERAS_BACKEND=tensorflow, "
                               f"since the current backend cannot convert to {format}) failed: {tail}")
        return np.load(result) if os.path.exists(result) else None


def _main(argv: list[str]) -> int:
    keras_path, out, format, sparse, probe_path, result = argv
    import keras

    import kerasinit  # noqa: F401  (registers kerasinit's initializers)

    model = keras.saving.load_model(keras_path, compile=False)
    outputs = convert(model, out, format, json.loads(sparse), np.load(probe_path))
    if outputs is not None:
        np.save(result, outputs)
    return 0


# --- running and reading .tflite models (LiteRT) ---------------------------------------------------------


def interpreter(content: bytes, num_threads: int = 1, delegates: bool = True) -> Any:
    """A LiteRT interpreter of ``content`` (XNNPack applied by default, as LiteRT does; ``delegates=False``:
    TFLite's built-in kernels only)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_content=content, num_threads=num_threads, experimental_op_resolver_type=kind)


def run_tflite(content: bytes, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Outputs of a one-input one-output ``.tflite`` model on batch ``x`` (the batch axis resized to ``len(x)``)."""
    it = interpreter(content, num_threads)
    inp = it.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        it.resize_tensor_input(inp["index"], list(x.shape), strict=False)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x.astype(inp["dtype"]))
    it.invoke()
    return np.array(it.get_tensor(it.get_output_details()[0]["index"]))


def io_counts(content: bytes) -> tuple[int, int]:
    it = interpreter(content, delegates=False)
    return len(it.get_input_details()), len(it.get_output_details())


def _opcode_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def flatbuffer_tensors(content: bytes) -> list[dict[str, Any]]:
    """Constant float tensors of subgraph 0: index, name, shape, size, values stored, nonzeros, |sum|, bytes,
    whether sparse-encoded (and its block), and the ops reading it (through DENSIFY or directly)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)
    names = _opcode_names()
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        codes.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        ops.append((codes[op.OpcodeIndex()], list(op.InputsAsNumpy()) if op.InputsLength() else [],
                    list(op.OutputsAsNumpy()) if op.OutputsLength() else []))
    readers: dict[int, list[tuple[str, bool, int]]] = {}
    for name, inputs, outputs in ops:
        if name != "DENSIFY":
            continue
        for t in inputs:
            for index, (reader, ins, _) in enumerate(ops):
                if any(o in ins for o in outputs):
                    readers.setdefault(t, []).append((reader, True, index))
    for index, (name, inputs, _) in enumerate(ops):
        if name != "DENSIFY":
            for t in inputs:
                if t >= 0:
                    readers.setdefault(t, []).append((name, False, index))
    out = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        if t.Type() != schema.TensorType.FLOAT32:
            continue
        buffer = model.Buffers(t.Buffer())
        raw = buffer.DataAsNumpy() if buffer is not None and buffer.DataLength() else None
        if raw is None and buffer is not None and buffer.Size():  # large models keep buffers past the flatbuffer
            raw = np.frombuffer(content, np.uint8, count=buffer.Size(), offset=buffer.Offset())
        if raw is None or isinstance(raw, int):
            continue
        values = np.frombuffer(raw.tobytes(), np.float32)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sparsity = t.Sparsity()
        block = None
        if sparsity is not None and sparsity.BlockMapLength():
            dims = [sparsity.DimMetadata(j) for j in range(sparsity.DimMetadataLength())]
            block = tuple(int(d.DenseSize()) for d in dims[len(shape):])
        index_bytes = 0
        if sparsity is not None:
            for j in range(sparsity.DimMetadataLength()):
                d = sparsity.DimMetadata(j)
                index_bytes += _index_bytes(schema, d.ArraySegmentsType(), d.ArraySegments())
                index_bytes += _index_bytes(schema, d.ArrayIndicesType(), d.ArrayIndices())
        out.append({"index": i, "name": t.Name().decode(), "shape": shape, "size": int(np.prod(shape)) if shape else 1,
                    "stored": int(values.size), "nonzeros": int(np.count_nonzero(values)),
                    "abs_sum": float(np.abs(values.astype(np.float64)).sum()), "bytes": int(values.nbytes) + index_bytes,
                    "sparse": sparsity is not None, "block": block, "readers": readers.get(i, [])})
    return out


def _index_bytes(schema: Any, kind: int, table: Any) -> int:
    """Bytes of one sparse-index vector of a tensor's ``dim_metadata`` (int32, uint16 or uint8)."""
    vectors = {schema.SparseIndexVector.Int32Vector: (schema.Int32Vector, 4),
               schema.SparseIndexVector.Uint16Vector: (schema.Uint16Vector, 2),
               schema.SparseIndexVector.Uint8Vector: (schema.Uint8Vector, 1)}
    if table is None or kind not in vectors:
        return 0
    cls, width = vectors[kind]
    vector = cls()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesLength() * width


def delegated_ops(content: bytes, num_threads: int = 1) -> tuple[set[int], int]:
    """Indices of the nodes the default delegate (XNNPack) took, and how many delegate nodes there are.

    A delegate node replaces a convex part of the graph: its nodes are those reached walking back from
    the delegate's outputs to its inputs.
    """
    it = interpreter(content, num_threads)
    it.allocate_tensors()
    ops = it._get_ops_details()
    producer = {}
    for op in ops:
        if op["op_name"] != "DELEGATE":
            for o in op["outputs"]:
                producer[int(o)] = op
    taken: set[int] = set()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    for d in delegates:
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            op = producer.get(t)
            if op is None or t in stop or op["index"] in taken:
                continue
            taken.add(op["index"])
            todo += [int(i) for i in op["inputs"] if i >= 0]
    return taken, len(delegates)


def xnnpack_sparse_kernels() -> tuple[bool | None, str]:
    """Whether XNNPack may use its sparse kernels on this CPU: ``(False, why)``, ``(None, why)`` when unknown."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686", "x86"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), None)
        except OSError:
            flags = None
        if flags is None:
            return None, "x86 CPU whose features could not be read: XNNPack disables its sparse kernels when it has AVX"
        if "avx" in flags:
            return False, ("this x86 CPU has AVX, on which XNNPack disables its sparse kernels (dense is expected to "
                           "be faster; XNNPack's xnn_is_chw_compatible_config)")
        return None, "x86 CPU without AVX: XNNPack may run 1x1 convolutions sparse; the delegate does not report it"
    return None, (f"{machine} CPU: XNNPack may run sparse 1x1 convolutions (NCHW rewrite); the delegate does not "
                  "report whether it did")


def gzip_size(path: str) -> int:
    """Bytes of ``path`` gzipped (level 9); a folder: the sum over its files."""
    if os.path.isdir(path):
        return sum(gzip_size(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9, mtime=0))


def file_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
