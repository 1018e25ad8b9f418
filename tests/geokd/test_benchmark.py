from geokd.benchmark import merge_rows


def test_merge_rows_replaces_matching_cells_and_appends_new_ones():
    previous = [{"dataset": "a", "model": "x", "v": 1}, {"dataset": "a", "model": "y", "v": 2},
                {"dataset": "b", "model": "x", "v": 3}]
    new = [{"dataset": "b", "model": "x", "v": 30}, {"dataset": "c", "model": "x", "v": 40},
           {"dataset": "a", "model": "x", "v": 10}]
    merged = merge_rows(previous, new, ("dataset", "model"))
    assert [(row["dataset"], row["model"], row["v"]) for row in merged] == [
        ("a", "x", 10), ("a", "y", 2), ("b", "x", 30), ("c", "x", 40)]
    assert merge_rows([], new, ("dataset", "model")) == new
    assert merge_rows(previous, [], ("dataset", "model")) == previous
