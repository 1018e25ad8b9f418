import json

import pytest
import torch

from graphkd.distill.data import make_split
from graphkd.distill.glnn import GLNN
from graphkd.distill.nosmog import NOSMOG
from graphkd.distill.search import (
    expand_grid,
    grid_search,
    merge_results,
    parse_grid,
    select_by_validation,
    split_options,
)
from graphkd.distill.student import DistillContext, student_defaults, train_student
from graphkd.distill.teacher import TeacherOutput
from tests.graphkd.distill.graphs import TINY_SPLIT, tiny_graph


def test_parse_grid_types_and_errors():
    grid = parse_grid(["adv_eps=0.02, 0.04", "adv_steps=3", "schedule=joint,two-pass", "use_position=false",
                       "batch_size=none"])
    assert grid == {"adv_eps": [0.02, 0.04], "adv_steps": [3], "schedule": ["joint", "two-pass"],
                    "use_position": [False], "batch_size": [None]}
    assert isinstance(grid["adv_steps"][0], int)
    for bad in (["adv_eps"], ["=0.1"], ["adv_eps="], ["adv_eps=,"], ["lr=0.1", "lr=0.2"], ["rsd_weight=0.1,nan"],
                ["lr=inf"]):
        with pytest.raises(ValueError, match="grid"):
            parse_grid(bad)


def test_expand_grid_order_and_empty():
    settings = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(settings) == 6
    assert settings[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert expand_grid({}) == [{}]


def test_split_options_routes_keys_and_names_unknown_ones():
    method, student = split_options({"adv_eps": 0.1, "rsd_weight": 0.3, "dropout": 0.5, "lr": 0.005}, NOSMOG)
    assert method == {"adv_eps": 0.1, "rsd_weight": 0.3} and student == {"dropout": 0.5, "lr": 0.005}
    with pytest.raises(ValueError, match="'adv_epsilon'"):
        split_options({"adv_epsilon": 0.1}, NOSMOG)
    with pytest.raises(ValueError, match="GLNN"):
        split_options({"adv_eps": 0.1}, GLNN)


def test_select_by_validation_ignores_test_and_keeps_the_first_of_equals():
    rows = [{"val_mean": 80.0, "test_mean": 90.0}, {"val_mean": 82.0, "test_mean": 70.0},
            {"val_mean": 82.0, "test_mean": 99.0}]
    assert select_by_validation(rows) == 1
    with pytest.raises(ValueError, match="no settings"):
        select_by_validation([])


def _contexts(data, calls):
    logits = torch.nn.functional.one_hot(data.y, data.num_classes).float() * 3

    def context(seed):
        calls.append(seed)
        split = make_split(data, "tran", seed, **TINY_SPLIT)
        return DistillContext(data, split, TeacherOutput.from_logits(logits, data, split), data.num_classes,
                              torch.device("cpu"), seed)
    return context


def test_grid_search_matches_direct_runs_and_resumes(tmp_path):
    torch.set_num_threads(1)
    data = tiny_graph()
    calls = []
    grid = {"lam": [0.0, 0.5], "epochs": [8], "patience": [8]}
    results = tmp_path / "search.json"
    outcome = grid_search(GLNN, _contexts(data, calls), [0, 1], grid, dataset="tiny", results=results)
    assert calls == [0, 1]  # one context per seed, shared by the settings
    assert [row["setting"] for row in outcome["rows"]] == expand_grid(grid)
    assert outcome["rows"][outcome["chosen"]]["val_mean"] == max(row["val_mean"] for row in outcome["rows"])

    # The same numbers as training each setting by hand.
    for row in outcome["rows"]:
        direct = []
        for seed in (0, 1):
            from geokd.seed import seed_everything

            ctx = _contexts(data, [])(seed)
            seed_everything(seed)
            kwargs = {**student_defaults("tiny"), "epochs": 8, "patience": 8}
            direct.append(100 * train_student(GLNN(lam=row["setting"]["lam"]), ctx, **kwargs).scores["test"])
        assert row["test_mean"] == pytest.approx(sum(direct) / 2)

    # Rerun: every run is read back, no context is built, the same table comes out.
    stored = json.loads(results.read_text())
    assert stored["method"] == "GLNN" and len(stored["runs"]) == 2
    again_calls = []
    again = grid_search(GLNN, _contexts(data, again_calls), [0, 1], grid, dataset="tiny", results=results)
    assert again_calls == [] and again == outcome
    # A third seed runs only that seed.
    grid_search(GLNN, _contexts(data, again_calls), [0, 1, 2], grid, dataset="tiny", results=results)
    assert again_calls == [2]


def test_grid_search_refuses_foreign_or_corrupt_results(tmp_path):
    data = tiny_graph()
    results = tmp_path / "search.json"
    results.write_text(json.dumps({"method": "NOSMOG", "dataset": "tiny", "runs": {}}))
    with pytest.raises(ValueError, match="method 'NOSMOG'"):
        grid_search(GLNN, _contexts(data, []), [0], {"epochs": [2]}, dataset="tiny", results=results)
    results.write_text("{not json")
    with pytest.raises(ValueError, match="not a search results file"):
        grid_search(GLNN, _contexts(data, []), [0], {"epochs": [2]}, dataset="tiny", results=results)
    with pytest.raises(ValueError, match="method must be one of"):
        grid_search("gnnless", _contexts(data, []), [0], {}, dataset="tiny")
    with pytest.raises(ValueError, match="at least one seed"):
        grid_search(GLNN, _contexts(data, []), [], {}, dataset="tiny")


def test_merge_results_joins_a_split_search(tmp_path):
    torch.set_num_threads(1)
    data = tiny_graph()
    grid = {"lam": [0.0, 0.5], "epochs": [4], "patience": [4]}
    first, second, merged = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "merged.json"
    grid_search(GLNN, _contexts(data, []), [0], grid, dataset="tiny", results=first)
    grid_search(GLNN, _contexts(data, []), [1], grid, dataset="tiny", results=second)
    assert merge_results([first, second], merged) == 4
    calls = []
    joined = grid_search(GLNN, _contexts(data, calls), [0, 1], grid, dataset="tiny", results=merged)
    assert calls == []
    whole = grid_search(GLNN, _contexts(data, []), [0, 1], grid, dataset="tiny", results=tmp_path / "whole.json")
    assert joined == whole

    stored = json.loads(second.read_text())
    key = next(iter(stored["runs"]))
    stored["runs"][key]["0"] = {"val": 1.0, "test": 2.0}  # a seed-0 run that disagrees with the first file
    second.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="seed 0 of setting"):
        merge_results([first, second], merged)
    stored["method"] = "NOSMOG"
    second.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="method 'NOSMOG'"):
        merge_results([first, second], merged)
    with pytest.raises(ValueError, match="does not exist"):
        merge_results([tmp_path / "missing.json"], merged)
    (tmp_path / "corrupt.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a search results file"):
        merge_results([tmp_path / "corrupt.json"], merged)
