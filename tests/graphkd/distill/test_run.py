import json

import pytest
import torch

from geokd.checkpoint import load_checkpoint
from graphkd.cli import main
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.run import parse_options, summarize
from graphkd.distill.teacher import cached_teacher


def test_distill_cli_production_setting_resumes_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["distill", "--dataset", "cora", "--method", "glnn", "--setting", "prod", "--seeds", "1", "--epochs", "80",
            "--teacher-epochs", "80", "--fan-out", "full", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = {row["model"]: row for row in summary["rows"]}
    assert set(rows) == {"sage", "mlp", "glnn"} and summary["metric"] == "prod"
    for row in rows.values():
        assert row["prod_mean"] == pytest.approx(0.8 * row["test_mean"] + 0.2 * row["test_ind_mean"])
        assert row["latency_ms"] > 0
    assert rows["glnn"]["accuracy"] > rows["mlp"]["accuracy"] + 10  # in %
    record = json.loads((out / "records" / "seed0.json").read_text())
    assert record["models"]["glnn"]["scores"]["test_ind"] > 0.5
    assert (out / "accuracy_latency.png").stat().st_size > 1000
    assert (out / "teachers" / "sage-ind-seed0.pt").is_file()

    # A rerun finds the seed done: same record, no training logged again.
    before = (out / "records" / "seed0.json").stat().st_mtime_ns
    log_lines = (out / "log.txt").read_text().count("teacher")
    assert main(argv) == 0
    assert (out / "records" / "seed0.json").stat().st_mtime_ns == before
    assert (out / "log.txt").read_text().count("teacher") == log_lines

    # Benchmarks read the cached teacher back through cached_teacher.
    data = load_node_dataset("cora")
    cached = cached_teacher(data, make_split(data, "ind", 0), 0, out / "teachers")
    state = load_checkpoint(out / "teachers" / "sage-ind-seed0.pt")
    assert torch.equal(cached.logits, state["logits"]) and torch.equal(cached.hidden, state["hidden"])
    assert cached.scores == state["scores"] and cached.best_epoch == state["best_epoch"]

    assert main(["export", "--ckpt", str(out / "students" / "glnn-seed0.pt"), "--out", str(tmp_path / "serve"),
                 "--formats", "torchscript"]) == 0
    assert (tmp_path / "serve" / "student.torchscript.pt").is_file()

    # The teacher cache records how its epoch was selected and refuses the other rule.
    fresh = tmp_path / "other"
    capsys.readouterr()
    assert main([*argv[:-3], "--out", str(fresh), "--teacher-dir", str(out / "teachers"),
                 "--teacher-select", "accuracy"]) == 2
    assert "selected on validation loss, not accuracy" in capsys.readouterr().err


def test_distill_cli_bad_arguments(tmp_path, capsys):
    assert main(["distill", "--dataset", "reddit", "--out", str(tmp_path)]) == 2
    assert "dataset must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["distill", "--method", "kd", "--out", str(tmp_path)])


def test_student_latency_feeds_wider_students_their_width():
    from graphkd.distill.data import load_node_dataset
    from graphkd.distill.run import student_latency
    from graphkd.nn import MLP

    data = load_node_dataset("cora")
    milliseconds, note = student_latency(MLP(data.num_features, 16, 7), data, repeat=2)
    assert milliseconds > 0 and note is None
    milliseconds, note = student_latency(MLP(data.num_features + 64, 16, 7), data, repeat=2)  # NOSMOG-style input
    assert milliseconds > 0 and "64 position features are not timed" in note
    with pytest.raises(ValueError, match="reads 10 features"):
        student_latency(MLP(10, 16, 7), data)


def test_summarize_keeps_validation_and_gives_paper_figures_to_sage_teachers_only():
    def record(teacher, val, test):
        return {"teacher": teacher, "models": {teacher: {"scores": {"val": val, "test": test}},
                                               "nosmog": {"scores": {"val": val - 0.01, "test": test + 0.01}}}}

    summary = summarize([record("sage", 0.80, 0.82), record("sage", 0.84, 0.80)], "tran", "cora")
    rows = {row["model"]: row for row in summary["rows"]}
    assert rows["nosmog"]["val_mean"] == pytest.approx(81.0) and rows["nosmog"]["val_std"] == pytest.approx(2.0)
    assert rows["nosmog"]["test_mean"] == pytest.approx(82.0) and rows["nosmog"]["accuracy"] == rows["nosmog"]["test_mean"]
    assert rows["nosmog"]["paper"] == 83.04 and rows["sage"]["val_mean"] == pytest.approx(82.0)

    # The published figures come from SAGE teachers; a student of another teacher is not set beside them.
    summary = summarize([record("appnp", 0.80, 0.82)], "tran", "cora")
    assert [row["paper"] for row in summary["rows"]] == [None, None]
    assert summary["rows"][1]["val_std"] == 0.0


def test_parse_options():
    methods, student = parse_options(["vqgraph.use_teacher_logits=true", "glnn.schedule=joint", "dropout=0.3",
                                      "batch_size=none", "glnn.lam=0"], ["glnn", "vqgraph"])
    assert methods == {"vqgraph": {"use_teacher_logits": True}, "glnn": {"schedule": "joint", "lam": 0}}
    assert student == {"dropout": 0.3, "batch_size": None}
    assert parse_options(None, ["glnn"]) == ({}, {})
    bad = {
        "schedule=joint": "not a student option",
        "epochs=5": "not a student option",  # a flag of its own
        "nosmog.adv_eps=0.1": "not among --method",
        "glnn.adv_eps=0.1": "GLNN takes no argument 'adv_eps'",
        "glnn.lam": "must look like METHOD.ARG=VALUE",
        "glnn.lam=": "must look like METHOD.ARG=VALUE",
        "glnn.lam=2": "lam must be in",  # the constructor's own check
        "glnn.schedule=sometimes": "schedule must be one of",
        "dropout=1.5": "dropout must be in",
        "lr=0": "lr must be a number > 0",
        "weight_decay=-1": "weight_decay must be a number >= 0",
        "weight_decay=nan": "values must be finite",
        "glnn.temperature=nan": "values must be finite",  # GLNN's own check (temperature <= 0) lets NaN through
        "glnn.lam=inf": "values must be finite",
        "batch_size=0": "batch_size must be an int >= 1",
        "norm=group": "norm must be one of",
    }
    for entry, message in bad.items():
        with pytest.raises(ValueError, match=message):
            parse_options([entry], ["glnn"])
    with pytest.raises(ValueError, match="sets 'glnn.lam' twice"):
        parse_options(["glnn.lam=0", "glnn.lam=0.5"], ["glnn"])


def test_distill_cli_options_reach_the_students_and_are_kept_with_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["distill", "--dataset", "cora", "--method", "glnn", "--seeds", "1", "--epochs", "5", "--teacher-epochs",
            "5", "--fan-out", "full", "--out", str(out), "--json", "--option", "dropout=0.25", "glnn.lam=0.5"]
    assert main(argv) == 0
    record = json.loads((out / "records" / "seed0.json").read_text())
    assert record["options"] == ["dropout=0.25", "glnn.lam=0.5"]
    assert json.loads(capsys.readouterr().out)["options"] == record["options"]
    for name in ("mlp", "glnn"):  # student options reach every student, the plain MLP's too
        assert load_checkpoint(out / "students" / f"{name}-seed0.pt")["student_config"]["dropout"] == 0.25
    capsys.readouterr()
    # The run directory holds students trained with these options: other options need another --out.
    assert main(argv[:-3]) == 2
    assert "use another --out for other options" in capsys.readouterr().err
    # A bad option fails before any training.
    assert main([*argv[:-3], "--out", str(tmp_path / "bad"), "--option", "glnn.lam=3"]) == 2
    assert "lam must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "teachers").exists()
