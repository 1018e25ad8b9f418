import argparse
import contextlib
import importlib.util
import io
import json

import pytest
import torch

from geokd.checkpoint import CheckpointError, save_checkpoint
from graphkd.distill.export import (
    FeaturePreprocess,
    ServingModel,
    add_export_parser,
    export_student,
    load_serving_model,
    load_student,
    run_export,
)
from graphkd.nn import MLP

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

IN_CHANNELS, HIDDEN, CLASSES = 20, 16, 3
FEATURE_MEAN, FEATURE_STD = 2.0, 3.0
CASES = {"batchnorm-standardised": ("batch", True), "layernorm-raw": ("layer", False)}


def trained_student(norm: str, seed: int = 0) -> MLP:
    """A student after a few steps on off-centre data, so BatchNorm's running statistics are not 0 / 1."""
    torch.manual_seed(seed)
    student = MLP(IN_CHANNELS, HIDDEN, CLASSES, norm=norm, dropout=0.5)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.05)
    for _ in range(10):
        x = FEATURE_MEAN + FEATURE_STD * torch.randn(64, IN_CHANNELS)
        loss = torch.nn.functional.cross_entropy(student(x), torch.randint(0, CLASSES, (64,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return student.eval()


def student_state(student: MLP, preprocess=None, **meta) -> dict:
    return {"kind": "graphkd.student", "student_config": student.config(), "student": student.state_dict(),
            "preprocess": preprocess,
            "meta": {"dataset": "toy", "method": "glnn", "setting": "tran", "seed": 3,
                     "class_names": ["a", "b", "c"], "feature_names": None, **meta}}


def features(rows: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return FEATURE_MEAN + FEATURE_STD * torch.randn(rows, IN_CHANNELS, generator=generator)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def hide_onnxruntime(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "onnxruntime" else find_spec(name, *args))


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, tmp_path_factory):
    """One export of both formats per case, shared by the tests of this module.

    An ONNX export takes seconds, so the cases also cover the two entry points: the batch-norm
    case calls :func:`export_student`, the layer-norm case goes through the CLI with onnxruntime
    hidden (the exported ONNX model is still compared to eager below, by the tests).
    """
    norm, standardise = CASES[request.param]
    student = trained_student(norm)
    preprocess = None
    if standardise:
        preprocess = {"mean": torch.full((IN_CHANNELS,), FEATURE_MEAN) + 0.1 * torch.arange(IN_CHANNELS),
                      "std": torch.full((IN_CHANNELS,), FEATURE_STD)}
    root = tmp_path_factory.mktemp(request.param)
    checkpoint = root / "students" / "glnn-seed3.pt"
    save_checkpoint(student_state(student, preprocess), checkpoint)
    via_cli = norm == "layer"
    if via_cli:
        stdout = io.StringIO()
        with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(stdout):
            hide_onnxruntime(monkeypatch)
            assert run_export(parse(["export", "--ckpt", str(checkpoint), "--out", str(root / "export"),
                                     "--json"])) == 0
        result = json.loads(stdout.getvalue())
        result["metadata"] = json.loads((root / "export" / "export.json").read_text())
    else:
        result = export_student(checkpoint, root / "export")
    return {"student": student, "preprocess": preprocess, "checkpoint": checkpoint, "result": result,
            "norm": norm, "onnx_checked": not via_cli}


def reference_probabilities(student: MLP, preprocess, x: torch.Tensor) -> torch.Tensor:
    if preprocess is not None:
        x = (x - preprocess["mean"]) / preprocess["std"]
    with torch.no_grad():
        return student.eval()(x).softmax(dim=-1)


def test_student_state_is_non_trivial(exported):
    if exported["norm"] == "batch":
        batch_norm = exported["student"].hidden_layers[0][1]
        assert batch_norm.running_mean.abs().max() > 0.1
        assert (batch_norm.running_var - 1).abs().max() > 0.1


def test_eager_serving_model_is_preprocess_mlp_softmax(exported):
    serving = load_serving_model(exported["checkpoint"])
    assert not serving.training
    serving.train()  # serving never leaves eval mode
    assert not serving.training and not serving.student.training
    x = features(50)
    probabilities = serving(x)
    assert probabilities.shape == (50, CLASSES)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(50))
    torch.testing.assert_close(probabilities, reference_probabilities(exported["student"], exported["preprocess"], x))


@pytest.mark.parametrize("rows", [1, 1000])
def test_torchscript_matches_eager(exported, rows):
    serving = load_serving_model(exported["checkpoint"])
    scripted = torch.jit.load(exported["result"]["files"]["torchscript"])
    x = features(rows)
    torch.testing.assert_close(scripted(x), serving(x), atol=1e-6, rtol=0)
    # other real dtypes are cast to float32
    torch.testing.assert_close(scripted(x.double()), serving(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rows", [1, 1000])
def test_onnx_matches_eager(exported, rows):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(exported["result"]["files"]["onnx"], providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["x"]
    assert [node.name for node in session.get_outputs()] == ["probabilities"]
    x = features(rows)
    (probabilities,) = session.run(["probabilities"], {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(probabilities), load_serving_model(exported["checkpoint"])(x),
                               atol=1e-5, rtol=0)


def test_export_result_and_files(exported):
    result = exported["result"]
    files = result["files"]
    assert set(files) == {"torchscript", "onnx", "json"}
    assert files["torchscript"].endswith("student.torchscript.pt") and files["onnx"].endswith("student.onnx")
    out_dir = exported["checkpoint"].parent.parent / "export"
    assert sorted(path.name for path in out_dir.iterdir()) == ["export.json", "student.onnx",
                                                              "student.torchscript.pt"]  # no temporary left
    assert 0 <= result["max_abs_diff"]["torchscript"] <= 1e-5
    if exported["onnx_checked"]:
        if importlib.util.find_spec("onnxruntime") is not None:
            assert 0 <= result["max_abs_diff"]["onnx"] <= 1e-5
    else:
        assert result["max_abs_diff"]["onnx"] is None
        assert any("onnxruntime is not installed" in note for note in result["notes"])


def test_export_json(exported):
    info = json.loads((exported["checkpoint"].parent.parent / "export" / "export.json").read_text())
    assert info == exported["result"]["metadata"]
    assert info["input_width"] == IN_CHANNELS and info["num_classes"] == CLASSES
    assert info["input_name"] == "x" and info["output_name"] == "probabilities"
    assert info["class_names"] == ["a", "b", "c"]
    assert (info["dataset"], info["method"], info["setting"], info["seed"]) == ("toy", "glnn", "tran", 3)
    assert info["formats"] == {"torchscript": "student.torchscript.pt", "onnx": "student.onnx"}
    assert info["torch_version"] == str(torch.__version__)
    assert info["onnx_opset"] >= 17
    assert info["student_config"] == exported["student"].config()
    preprocess = exported["preprocess"]
    if preprocess is None:
        assert info["preprocessing"]["standardize"] is False
        assert info["preprocessing"]["mean"] is None and info["preprocessing"]["std"] is None
    else:
        assert info["preprocessing"]["standardize"] is True
        assert info["preprocessing"]["mean"] == pytest.approx(preprocess["mean"].tolist())
        assert info["preprocessing"]["std"] == pytest.approx(preprocess["std"].tolist())
    assert info["check"]["performed"] is True and info["check"]["batch_sizes"] == [64, 1]


def test_wrong_width_raises(exported):
    message = r"x must have shape \(N, 20\).*got shape \[4, 19\]"
    with pytest.raises(ValueError, match=message):
        load_serving_model(exported["checkpoint"])(torch.randn(4, 19))
    scripted = torch.jit.load(exported["result"]["files"]["torchscript"])
    with pytest.raises(torch.jit.Error, match=message):
        scripted(torch.randn(4, 19))
    with pytest.raises(torch.jit.Error, match=r"x must have shape \(N, 20\)"):
        scripted(torch.randn(IN_CHANNELS))
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(exported["result"]["files"]["onnx"], providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match=r"invalid dimensions for input: x"):
        session.run(None, {"x": torch.randn(4, 19).numpy()})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_rows_raise(exported, value):
    x = features(5)
    x[2, 7] = value
    message = r"x has NaN or inf in 1 row\(s\), first at row 2"
    with pytest.raises(ValueError, match=message):
        load_serving_model(exported["checkpoint"])(x)
    with pytest.raises(torch.jit.Error, match=message):
        torch.jit.load(exported["result"]["files"]["torchscript"])(x)


def test_bad_checkpoints_raise(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="unreadable"):
        export_student(garbage, tmp_path / "out")

    student = MLP(IN_CHANNELS, HIDDEN, CLASSES)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(student_state(student), truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_student(truncated)

    teacher = tmp_path / "teacher.pt"
    save_checkpoint({"model": student.state_dict()}, teacher)
    with pytest.raises(CheckpointError, match=r"holds kind None, not a student \('graphkd.student'\)"):
        export_student(teacher, tmp_path / "out")

    mismatched = tmp_path / "mismatched.pt"
    state = student_state(student)
    state["student_config"]["hidden_channels"] = 32
    save_checkpoint(state, mismatched)
    with pytest.raises(CheckpointError, match="does not rebuild an MLP"):
        load_student(mismatched)

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_student(tmp_path / "missing.pt")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("preprocess, message", [
    ({"mean": torch.zeros(IN_CHANNELS), "std": torch.zeros(IN_CHANNELS)}, r"std must be > 0"),
    ({"mean": torch.zeros(IN_CHANNELS + 1), "std": None}, r"mean must have shape \(20,\)"),
    ({"mean": None, "std": None, "extra": torch.zeros(5, 3)}, r"unknown entries \['extra'\]"),
])
def test_bad_preprocess_raises(tmp_path, preprocess, message):
    checkpoint = tmp_path / "student.pt"
    save_checkpoint(student_state(MLP(IN_CHANNELS, HIDDEN, CLASSES), preprocess), checkpoint)
    with pytest.raises(CheckpointError, match=message):
        export_student(checkpoint, tmp_path / "out")


def test_feature_preprocess_roundtrip():
    mean, std = torch.randn(4), torch.rand(4) + 0.5
    preprocess = FeaturePreprocess.from_state({"mean": mean, "std": std}, 4)
    x = torch.randn(3, 4)
    torch.testing.assert_close(preprocess(x), (x - mean) / std)
    state = preprocess.to_state()
    torch.testing.assert_close(state["mean"], mean)
    torch.testing.assert_close(state["std"], std)
    assert FeaturePreprocess.from_state(None, 4).to_state() == {"mean": None, "std": None}
    torch.testing.assert_close(FeaturePreprocess(4, std=std)(x), x / std)
    with pytest.raises(ValueError, match="preprocess has width 4, the student 20"):
        ServingModel(MLP(IN_CHANNELS, HIDDEN, CLASSES), preprocess)


def test_bad_arguments_raise(tmp_path):
    checkpoint = tmp_path / "student.pt"
    save_checkpoint(student_state(MLP(IN_CHANNELS, HIDDEN, CLASSES)), checkpoint)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(OSError, match="out_dir .* is not a writable directory"):
        export_student(checkpoint, not_a_dir / "export", formats=["torchscript"])
    with pytest.raises(ValueError, match=r"formats must be a non-empty subset of \['torchscript', 'onnx'\]"):
        export_student(checkpoint, tmp_path / "out", formats=["tflite"])
    with pytest.raises(ValueError, match="formats must be"):
        export_student(checkpoint, tmp_path / "out", formats=[])


def test_run_export_cli(tmp_path, capsys):
    checkpoint = tmp_path / "student.pt"
    save_checkpoint(student_state(trained_student("batch")), checkpoint)
    args = parse(["export", "--ckpt", str(checkpoint), "--out", str(tmp_path / "out"), "--formats", "torchscript"])
    assert args.check is True and args.json is False
    assert run_export(args) == 0
    summary = capsys.readouterr().out
    assert "20 features -> 3 classes" in summary and "student.torchscript.pt" in summary

    args = parse(["export", "--ckpt", str(checkpoint), "--out", str(tmp_path / "out"), "--formats", "torchscript",
                  "--no-check", "--json"])
    assert run_export(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["max_abs_diff"] == {"torchscript": None}
    assert set(result["files"]) == {"torchscript", "json"}
    assert json.loads((tmp_path / "out" / "export.json").read_text())["check"]["performed"] is False

    args = parse(["export", "--ckpt", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "out2")])
    assert run_export(args) == 2
    assert "error: checkpoint" in capsys.readouterr().err
