r"""Export a distilled MLP student for serving: TorchScript, ONNX and a JSON description.

The point of GNN-to-MLP distillation (`GLNN <https://arxiv.org/abs/2110.08727>`_) is a model that
answers from a node's own features, without fetching neighbours. This module turns a student
checkpoint written by ``graphkd distill`` into a self-contained serving model

.. math::
    p = \mathrm{softmax}\big(f_\theta((x - \mu) / \sigma)\big),

where :math:`f_\theta` is the :class:`~graphkd.nn.mlp.MLP` in eval mode (dropout off, BatchNorm on
its running statistics) and :math:`(\mu, \sigma)` the optional per-column standardisation stored
with the checkpoint. Callers feed raw feature rows and get class probabilities.

The input is the student's full input, ``in_channels`` columns. Methods that append per-node
inputs during training (NOSMOG's positional encodings) cannot export them, since they depend on
node ids in the training graph: callers concatenate those columns to the node features themselves,
in training order, before calling the model.

Files written by :func:`export_student` (or ``graphkd export --ckpt PATH --out DIR``)::

    DIR/student.torchscript.pt   torch.jit.script of ServingModel
    DIR/student.onnx             opset 18, input "x" (batch, F) float32, output "probabilities" (batch, C)
    DIR/export.json              width, classes, class names, preprocessing, versions, checks

Serving with onnxruntime (no torch needed)::

    import json
    import numpy as np
    import onnxruntime as ort

    info = json.load(open("DIR/export.json"))
    session = ort.InferenceSession("DIR/student.onnx", providers=["CPUExecutionProvider"])
    x = np.asarray(rows, dtype=np.float32)                # (N, info["input_width"]) node features
    # ONNX has no assert operator, so the graph cannot reject NaN/inf: a non-finite row comes out as
    # a row of NaN. Check before calling (the TorchScript model raises by itself).
    if not np.isfinite(x).all():
        raise ValueError(f"rows {np.flatnonzero(~np.isfinite(x).all(axis=1)).tolist()} have NaN or inf")
    probabilities = session.run(["probabilities"], {"x": x})[0]   # (N, C), rows sum to 1
    labels = [info["class_names"][i] if info["class_names"] else i for i in probabilities.argmax(1)]

Serving with TorchScript::

    import torch

    model = torch.jit.load("DIR/student.torchscript.pt")
    probabilities = model(torch.as_tensor(rows, dtype=torch.float32))   # (N, C)

A wrong feature width raises in both (TorchScript: ``x must have shape (N, F)``; onnxruntime:
``Got invalid dimensions for input: x``); NaN/inf rows raise in TorchScript and eager mode.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geokd.checkpoint import CheckpointError, load_checkpoint
from graphkd.nn.mlp import MLP

__all__ = ["FORMATS", "ExportCheckError", "FeaturePreprocess", "ServingModel", "add_export_parser", "export_student",
           "load_serving_model", "load_student", "run_export"]

STUDENT_KIND = "graphkd.student"
FORMATS = ("torchscript", "onnx")
FILE_NAMES = {"torchscript": "student.torchscript.pt", "onnx": "student.onnx", "json": "export.json"}
INPUT_NAME, OUTPUT_NAME = "x", "probabilities"
# The opset onnxscript's torchlib is written in; asking for another one adds a version-conversion pass.
ONNX_OPSET = 18
TOLERANCE = 1e-5
EXPORT_FORMAT_VERSION = 1


class ExportCheckError(RuntimeError):
    """An exported model disagrees with the eager model beyond the tolerance."""


class FeaturePreprocess(torch.nn.Module):
    r"""Optional per-column standardisation :math:`x' = (x - \mu) / \sigma`.

    Either statistic may be absent: ``mean`` alone centres, ``std`` alone scales, neither is the
    identity. The state stored in a checkpoint is the plain dict ``{"mean": Tensor | None,
    "std": Tensor | None}`` (:meth:`from_state`, :meth:`to_state`).

    Args:
        in_channels (int): input width :math:`F`.
        mean (Tensor, optional): :math:`\mu`, finite. (default: ``None``)
        std (Tensor, optional): :math:`\sigma`, finite and ``> 0``; store 1 for constant
            columns. (default: ``None``)
        dtype (torch.dtype): dtype of the statistics, the student's. (default: ``torch.float32``)

    Shapes:
        - **mean, std:** :math:`(F,)`
        - **input:** :math:`(N, F)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, in_channels: int, mean: Tensor | None = None, std: Tensor | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_channels = in_channels
        # Plain bools (not Optional buffers) keep forward scriptable and let torch.export drop
        # the unused branch; the identity buffers are never read when the flag is off.
        self.center = mean is not None
        self.scale = std is not None
        self.register_buffer("mean", self._checked("mean", mean, in_channels, dtype, 0.0))
        self.register_buffer("std", self._checked("std", std, in_channels, dtype, 1.0))
        if self.scale and bool((self.std <= 0).any()):
            columns = (self.std <= 0).nonzero().flatten()[:10].tolist()
            raise ValueError(f"preprocess std must be > 0 in every column, got <= 0 in columns {columns} "
                             "(store 1 for constant columns)")

    @staticmethod
    def _checked(name: str, value: Tensor | None, in_channels: int, dtype: torch.dtype, fill: float) -> Tensor:
        if value is None:
            return torch.full((in_channels,), fill, dtype=dtype)
        if not isinstance(value, Tensor):
            raise TypeError(f"preprocess {name} must be a tensor or None, got {type(value).__name__}")
        if value.shape != (in_channels,):
            raise ValueError(f"preprocess {name} must have shape ({in_channels},) to match the student's input "
                             f"width, got {tuple(value.shape)}")
        value = value.detach().to(device="cpu", dtype=dtype).clone()
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"preprocess {name} must be finite, got NaN or inf")
        return value

    @classmethod
    def from_state(cls, state: dict | None, in_channels: int, dtype: torch.dtype = torch.float32) -> FeaturePreprocess:
        """Build from a checkpoint's ``preprocess`` entry (``None`` or ``{"mean": ..., "std": ...}``)."""
        if state is None:
            return cls(in_channels, dtype=dtype)
        if not isinstance(state, dict):
            raise TypeError(f"preprocess must be None or a dict with 'mean' and 'std', got {type(state).__name__}")
        unknown = set(state) - {"mean", "std"}
        if unknown:
            raise ValueError(f"preprocess has unknown entries {sorted(unknown)}; only 'mean' and 'std' can be "
                             "exported (per-node inputs such as NOSMOG's positional features are the caller's)")
        return cls(in_channels, state.get("mean"), state.get("std"), dtype=dtype)

    def to_state(self) -> dict:
        return {"mean": self.mean.clone() if self.center else None, "std": self.std.clone() if self.scale else None}

    def forward(self, x: Tensor) -> Tensor:
        if self.center:
            x = x - self.mean
        if self.scale:
            x = x / self.std
        return x


class ServingModel(torch.nn.Module):
    r"""Preprocessing, the MLP student in eval mode and a softmax: raw features to class probabilities.

    .. math::
        p = \mathrm{softmax}\big(f_\theta((x - \mu) / \sigma)\big)

    The module always stays in eval mode (``train()`` is a no-op) and holds copies of the student
    and preprocessing, so the caller's modules are left as they were. Scriptable with
    :func:`torch.jit.script`.

    Args:
        student (MLP): the trained student.
        preprocess (FeaturePreprocess, optional): standardisation applied first. (default: identity)
        check_finite (bool): raise on rows with NaN or inf. Turned off only for the ONNX export,
            whose graph cannot raise. (default: ``True``)

    Raises (from :meth:`forward`):
        ValueError: if ``x`` is not ``(N, in_channels)`` or (with ``check_finite``) has NaN or inf;
            the message names ``x`` (and the first bad row). Other real dtypes are cast to the
            student's.
        (A TorchScript module raises ``torch.jit.Error`` carrying the same message.)

    Shapes:
        - **input:** :math:`(N, F)` with :math:`F` = ``student.in_channels``, the full student
          input (positional features, if the method used any, concatenated by the caller)
        - **output:** :math:`(N, C)`, rows summing to 1
    """

    def __init__(self, student: MLP, preprocess: FeaturePreprocess | None = None, check_finite: bool = True):
        super().__init__()
        if not isinstance(student, MLP):
            raise TypeError(f"student must be a graphkd MLP, got {type(student).__name__}")
        dtype = student.output.weight.dtype
        if preprocess is None:
            preprocess = FeaturePreprocess(student.in_channels, dtype=dtype)
        if preprocess.in_channels != student.in_channels:
            raise ValueError(f"preprocess has width {preprocess.in_channels}, the student {student.in_channels}")
        self.preprocess = copy.deepcopy(preprocess).to(dtype)
        self.student = copy.deepcopy(student)
        self.in_channels = student.in_channels
        self.num_classes = student.out_channels
        self.check_finite = check_finite
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ServingModel:
        # Serving is inference only: BatchNorm must keep its running statistics and dropout stay off.
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}) (node features, {self.in_channels} "
                             f"columns), got shape {list(x.shape)}")
        # Integer or float64 features (counts, bag-of-words) are cast rather than rejected.
        x = x.to(self.preprocess.mean.dtype)
        if self.check_finite:
            bad_rows = (~torch.isfinite(x)).any(dim=1).nonzero()
            if bad_rows.numel() > 0:
                raise ValueError(f"x has NaN or inf in {bad_rows.numel()} row(s), first at row "
                                 f"{int(bad_rows[0, 0])}; clean or drop those rows before calling")
        return torch.softmax(self.student(self.preprocess(x)), dim=-1)


def load_student(path: str | os.PathLike) -> tuple[MLP, dict[str, Any]]:
    """Rebuild the MLP student saved in a ``graphkd distill`` checkpoint.

    Args:
        path (path): a checkpoint written with ``kind="graphkd.student"``.

    Returns:
        (MLP, dict): the student in eval mode, and the checkpoint's whole state (``preprocess``,
        ``meta``, ...).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is corrupt, not a geokd checkpoint, not a student, or its
            weights do not fit its configuration.
    """
    # weights_only: a student checkpoint is tensors and plain values, and reading a file handed
    # in for export must not run arbitrary pickled code.
    state = load_checkpoint(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("kind") != STUDENT_KIND:
        kind = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} holds kind {kind!r}, not a student ({STUDENT_KIND!r}); pass a file from "
                              "a distill run's OUT/students/ folder")
    missing = [key for key in ("student_config", "student") if key not in state]
    if missing:
        raise CheckpointError(f"student checkpoint {path} lacks {missing}")
    try:
        student = MLP(**state["student_config"])
        student.load_state_dict(state["student"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"student checkpoint {path} does not rebuild an MLP: {error}") from error
    return student.eval(), state


def _serving_model(student: MLP, state: dict, path: str | os.PathLike, check_finite: bool = True) -> ServingModel:
    try:
        preprocess = FeaturePreprocess.from_state(state.get("preprocess"), student.in_channels,
                                                  student.output.weight.dtype)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"student checkpoint {path}: {error}") from error
    return ServingModel(student, preprocess, check_finite)


def load_serving_model(path: str | os.PathLike) -> ServingModel:
    """The eager :class:`ServingModel` of a student checkpoint (same errors as :func:`load_student`)."""
    student, state = load_student(path)
    return _serving_model(student, state, path)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    # TorchScript is deprecated in torch >= 2.10 but it is the format asked for; the other messages
    # are torch's own internals (a tree-spec FutureWarning, "torchvision is not installed" from the
    # ONNX op registry). None of them is about the user's model, so a CLI run stays readable.
    registry_logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        registry_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            registry_logger.setLevel(level)


def _temporary(out_dir: Path, name: str) -> Path:
    handle, temporary = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    return Path(temporary)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        # OSError(errno, ...) becomes the matching subclass (PermissionError, NotADirectoryError, ...).
        raise OSError(error.errno, f"out_dir {out} is not a writable directory ({error.strerror or error})") from error
    return out


def _export_onnx(model: ServingModel, example: Tensor) -> bytes:
    # torch.export-based exporter (dynamo=True), the default since torch 2.9. The TorchScript-based
    # one (dynamo=False) is 20x faster on a small MLP but deprecated and slated for removal, so new
    # code should not depend on it; the price is the onnxscript dependency and a few seconds per
    # export. Its optimizer also folds eval BatchNorm into the linear layers.
    program = torch.onnx.export(
        model, (example,), dynamo=True, verbose=False, opset_version=ONNX_OPSET,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
    )
    # Serialise in memory (weights inline: an MLP is far below protobuf's 2 GB) so the file can be
    # written atomically like the others.
    return program.model_proto.SerializeToString()


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_inputs(serving: ServingModel) -> list[Tensor]:
    """A batch of 64 rows on the scale of the training data, and a batch of 1."""
    generator = torch.Generator().manual_seed(0)
    dtype = serving.preprocess.mean.dtype
    batch = torch.randn(64, serving.in_channels, generator=generator, dtype=dtype)
    if serving.preprocess.scale:
        batch = batch * serving.preprocess.std
    if serving.preprocess.center:
        batch = batch + serving.preprocess.mean
    return [batch, batch[:1].clone()]


def _max_abs_diff(run, serving: ServingModel, inputs: list[Tensor], name: str) -> float:
    worst = 0.0
    for x in inputs:
        expected = serving(x)
        got = torch.as_tensor(run(x))
        if got.shape != expected.shape:
            raise ExportCheckError(f"{name} model returned shape {tuple(got.shape)} for a batch of {len(x)}, "
                                   f"expected {tuple(expected.shape)}")
        worst = max(worst, float((got.to(expected.dtype) - expected).abs().max()))
    if not worst <= TOLERANCE:
        raise ExportCheckError(f"{name} model differs from the eager model by {worst:.3g} > {TOLERANCE:g}")
    return worst


def export_student(checkpoint_path: str | os.PathLike, out_dir: str | os.PathLike,
                   formats: Sequence[str] = FORMATS, check: bool = True) -> dict[str, Any]:
    r"""Export a student checkpoint to TorchScript and/or ONNX, with an ``export.json``.

    Files are written to temporary names in ``out_dir``, checked, then renamed into place, so a
    failed export leaves earlier files untouched.

    Args:
        checkpoint_path (path): a ``graphkd.student`` checkpoint (see :func:`load_student`).
        out_dir (path): output folder, created if missing.
        formats (sequence of str): any of ``"torchscript"``, ``"onnx"``. (default: both)
        check (bool): run every exported model on a random batch of 64 rows and on a batch of 1 and
            require a max abs difference to the eager model of at most ``1e-5``. ONNX runs through
            onnxruntime when it is installed; otherwise that check is skipped and a note says so
            in ``export.json``. (default: ``True``)

    Returns:
        dict: ``out_dir``, ``files`` (format or ``"json"`` to path), ``max_abs_diff`` (format to
        float, ``None`` when not checked), ``notes`` and ``metadata`` (the content of ``export.json``).

    Raises:
        ValueError: if ``formats`` is empty or names an unknown format.
        FileNotFoundError, CheckpointError: as :func:`load_student`, or when the stored
            preprocessing is invalid.
        OSError: if ``out_dir`` cannot be created or written.
        ImportError: if ``"onnx"`` is asked for without the ``onnx`` and ``onnxscript`` packages.
        ExportCheckError: if a check fails (nothing is written then).
    """
    if isinstance(formats, str):
        formats = [formats]
    formats = list(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {list(FORMATS)}, got {formats}")
    if "onnx" in formats:
        absent = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
        if absent:
            raise ImportError(f"formats includes 'onnx', which needs the {' and '.join(absent)} package(s): "
                              f"pip install {' '.join(absent)}")

    student, state = load_student(checkpoint_path)
    serving = _serving_model(student, state, checkpoint_path)
    out = _prepare_out_dir(out_dir)
    meta = state.get("meta") or {}
    notes: list[str] = []
    max_abs_diff: dict[str, float | None] = {name: None for name in formats}
    check_inputs = _check_inputs(serving) if check else []
    temporaries: dict[str, Path] = {}
    try:
        with _quiet_export():
            if "torchscript" in formats:
                temporaries["torchscript"] = _temporary(out, FILE_NAMES["torchscript"])
                torch.jit.save(torch.jit.script(serving), str(temporaries["torchscript"]))
                if check:
                    scripted = torch.jit.load(str(temporaries["torchscript"]))
                    max_abs_diff["torchscript"] = _max_abs_diff(scripted, serving, check_inputs, "TorchScript")
            if "onnx" in formats:
                onnx_model = ServingModel(serving.student, serving.preprocess, check_finite=False)
                temporaries["onnx"] = _temporary(out, FILE_NAMES["onnx"])
                _write_bytes(temporaries["onnx"], _export_onnx(onnx_model, _check_inputs(serving)[0][:8]))
                if check and importlib.util.find_spec("onnxruntime") is None:
                    notes.append("onnx: not checked, onnxruntime is not installed (pip install onnxruntime)")
                elif check:
                    import onnxruntime

                    session = onnxruntime.InferenceSession(str(temporaries["onnx"]),
                                                           providers=["CPUExecutionProvider"])

                    def run_onnx(x: Tensor):
                        return session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]

                    max_abs_diff["onnx"] = _max_abs_diff(run_onnx, serving, check_inputs, "ONNX")
        if not check:
            notes.append("exported models were not checked against the eager model (check=False)")

        preprocess = serving.preprocess
        metadata = {
            "export_format_version": EXPORT_FORMAT_VERSION,
            "source_checkpoint": str(checkpoint_path),
            "input_name": INPUT_NAME,
            "input_width": serving.in_channels,
            "input_dtype": str(preprocess.mean.dtype).removeprefix("torch."),
            "input_note": ("x is (N, input_width): the student's full input. Per-node inputs a method appended "
                           "in training (NOSMOG positional features) are not part of the model; concatenate "
                           "them after the node features yourself."),
            "output_name": OUTPUT_NAME,
            "num_classes": serving.num_classes,
            "class_names": meta.get("class_names"),
            "feature_names": meta.get("feature_names"),
            "student_config": student.config(),
            "preprocessing": {
                "standardize": preprocess.center or preprocess.scale,
                "mean": preprocess.mean.tolist() if preprocess.center else None,
                "std": preprocess.std.tolist() if preprocess.scale else None,
                "note": "applied inside the exported models: feed raw features",
            },
            "nonfinite_input": {
                "torchscript": "raises (message names x and the first bad row)",
                "onnx": "cannot raise (ONNX has no assert op): a NaN/inf row gives a NaN row; check "
                        "np.isfinite(x) before calling",
            },
            "dataset": meta.get("dataset"),
            "method": meta.get("method"),
            "setting": meta.get("setting"),
            "seed": meta.get("seed"),
            "formats": {name: FILE_NAMES[name] for name in formats},
            "onnx_opset": ONNX_OPSET if "onnx" in formats else None,
            "onnx_exporter": "torch.onnx.export(dynamo=True)" if "onnx" in formats else None,
            "versions": {name: _package_version(name) for name in ("torch", "onnx", "onnxscript", "onnxruntime")},
            "torch_version": str(torch.__version__),
            "check": {"performed": check, "tolerance": TOLERANCE, "batch_sizes": [len(x) for x in check_inputs],
                      "max_abs_diff": max_abs_diff},
            "notes": notes,
        }
        temporaries["json"] = _temporary(out, FILE_NAMES["json"])
        _write_bytes(temporaries["json"], (json.dumps(metadata, indent=2) + "\n").encode())
        # Models first, description last: export.json never describes files that are not there.
        files = {}
        for name, temporary in temporaries.items():
            files[name] = str(out / FILE_NAMES[name])
            os.replace(temporary, files[name])
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
    return {"out_dir": str(out), "files": files, "max_abs_diff": max_abs_diff, "notes": notes, "metadata": metadata}


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export`` to a ``graphkd`` subparsers object; :func:`run_export` handles it."""
    parser = subparsers.add_parser(
        "export",
        help="export a distilled MLP student to TorchScript and ONNX for serving",
        description=(
            "Rebuild the student of a distill checkpoint (OUT/students/METHOD-seedN.pt), wrap it with its "
            "preprocessing and a softmax, and write DIR/student.torchscript.pt, DIR/student.onnx (opset 18, "
            "dynamic batch) and DIR/export.json. Both models map (N, F) float32 node features to (N, C) class "
            "probabilities; each is checked against the eager model on random batches (max abs diff <= 1e-5; "
            "ONNX through onnxruntime when installed)."
        ),
    )
    parser.add_argument("--ckpt", required=True, help="student checkpoint written by graphkd distill")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS),
                        help="formats to write (default: torchscript onnx)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip running the exported models against the eager model")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def run_export(args: argparse.Namespace) -> int:
    """Run ``graphkd export``; exit code 0, 1 when a check fails, 2 for bad input."""
    try:
        result = export_student(args.ckpt, args.out, formats=args.formats, check=args.check)
    except ExportCheckError as error:
        print(f"graphkd export: check failed: {error}", file=sys.stderr)
        return 1
    except (CheckpointError, OSError, ImportError, ValueError) as error:
        print(f"graphkd export: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({key: value for key, value in result.items() if key != "metadata"}, indent=2))
        return 0
    metadata = result["metadata"]
    print(f"exported {args.ckpt} ({metadata['dataset']}, {metadata['method']}, {metadata['setting']}, seed "
          f"{metadata['seed']}): {metadata['input_width']} features -> {metadata['num_classes']} classes")
    for name, path in result["files"].items():
        diff = result["max_abs_diff"].get(name)
        detail = "" if name == "json" else (" not checked" if diff is None else f" max |diff| vs eager {diff:.1e}")
        print(f"  {name:<12} {path}{detail}")
    for note in result["notes"]:
        print(f"  note: {note}")
    return 0
