import pytest
import torch

from graphkd.condense import discretize

EDGES = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])


def test_auto_picks_argmax_for_one_hot():
    features = torch.eye(4)[[2, 0, 3]]
    assert discretize(features, EDGES, 3).tolist() == [2, 0, 3]


def test_auto_picks_categorical_for_integer_columns():
    features = torch.tensor([[6, 0], [8, 1], [6, 0]])
    labels = discretize(features, EDGES, 3)
    assert labels[0] == labels[2] != labels[1]


@pytest.mark.parametrize("rows,columns,high", [(2000, 9, 5), (3000, 3, 2**40), (500, 30, 2**20), (1, 1, 3)])
def test_categorical_ids_match_unique_rows(rows, columns, high):
    # Wide value ranges force the mixed-radix code to re-rank before it overflows int64.
    generator = torch.Generator().manual_seed(rows)
    features = torch.randint(-high, high, (rows, columns), generator=generator)
    features[rows // 2 :] = features[: rows - rows // 2].flip(0)  # repeated rows
    expected = torch.unique(features, dim=0, return_inverse=True)[1]
    assert torch.equal(discretize(features, EDGES, rows, "categorical"), expected)


def test_degree_without_features():
    assert discretize(None, EDGES, 3).tolist() == [1, 2, 1]  # in-degrees
    assert discretize(None, EDGES, 3, "degree").tolist() == [1, 2, 1]


def test_edges_without_features_are_alike():
    assert discretize(None, EDGES, 3, what="edges").tolist() == [0, 0, 0, 0]


def test_callable():
    def by_first_column(features, edge_index, num_nodes):
        return (features[:, 0] > 0.5).long()

    assert discretize(torch.tensor([[0.9], [0.1], [0.7]]), EDGES, 3, by_first_column).tolist() == [1, 0, 1]


def test_errors():
    with pytest.raises(ValueError, match="cannot discretize continuous nodes features"):
        discretize(torch.tensor([[0.5], [0.25], [1.0]]), EDGES, 3)
    with pytest.raises(ValueError, match="strategy must be one of"):
        discretize(None, EDGES, 3, "kmeans")
    with pytest.raises(ValueError, match="needs one-hot"):
        discretize(torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]), EDGES, 3, "argmax")
    with pytest.raises(ValueError, match="has|have 2 rows, expected 3"):
        discretize(torch.eye(2), EDGES, 3, "argmax")
    with pytest.raises(TypeError, match="must return a 1-D int64 tensor"):
        discretize(None, EDGES, 3, lambda f, e, n: [0, 0, 0])


def test_columns_are_categorical_on_the_chosen_columns():
    generator = torch.Generator().manual_seed(0)
    features = torch.randint(0, 4, (200, 5), generator=generator)
    for columns in ([0], [3, 1], [4, 0, 2]):
        expected = torch.unique(features[:, columns], dim=0, return_inverse=True)[1]
        strategy = "columns:" + ",".join(map(str, columns))
        assert torch.equal(discretize(features, EDGES, 200, strategy), expected)
        assert torch.equal(discretize(features.float(), EDGES, 200, strategy), expected)
    # Integer-valued chosen columns suffice; the others may be anything.
    mixed = torch.cat([features[:, :1].float(), torch.rand(200, 1, generator=generator)], dim=1)
    assert torch.equal(discretize(mixed, EDGES, 200, "columns:0"), features[:, 0])
    assert torch.equal(discretize(features, EDGES, 200, "columns:0,1,2,3,4"), discretize(features, EDGES, 200))


@pytest.mark.parametrize("strategy", ["columns:", "columns:a", "columns:-1", "columns:0,0", "columns:1,,2"])
def test_columns_errors(strategy):
    with pytest.raises(ValueError, match="distinct non-negative column indices"):
        discretize(torch.zeros(3, 2), EDGES, 3, strategy)


def test_columns_out_of_range_or_continuous():
    with pytest.raises(ValueError, match="column 2 is out of range for nodes features with 2 columns"):
        discretize(torch.zeros(3, 2), EDGES, 3, "columns:0,2")
    with pytest.raises(ValueError, match="'columns:1' needs integer-valued edges features"):
        discretize(torch.tensor([[1.0, 0.5]] * 4), EDGES, 3, "columns:1", what="edges")
    with pytest.raises(ValueError, match="needs nodes features, and there are none"):
        discretize(None, EDGES, 3, "columns:0")


def test_category_keys_are_what_the_categories_stand_for():
    from graphkd.condense import category_keys

    features = torch.tensor([[6, 0, 3], [8, 1, 3], [6, 0, 5]])
    keys, resolved = category_keys(features, EDGES, 3, "columns:0,1")
    assert resolved == "columns:0,1" and keys.tolist() == [[6, 0], [8, 1], [6, 0]]
    # Ranks depend on the rows a call sees; keys do not.
    assert discretize(features, EDGES, 3, "columns:0,1").tolist() == [0, 1, 0]
    assert discretize(features[1:], EDGES[:, :1], 2, "columns:0,1").tolist() == [1, 0]
    assert category_keys(features[1:], EDGES[:, :1], 2, "columns:0,1")[0].tolist() == [[8, 1], [6, 0]]
    keys, resolved = category_keys(torch.eye(4)[[2, 0, 3]], EDGES, 3)
    assert resolved == "argmax" and keys.view(-1).tolist() == [2, 0, 3]
    keys, resolved = category_keys(None, EDGES, 3)
    assert resolved == "degree" and keys.view(-1).tolist() == [1, 2, 1]
    keys, resolved = category_keys(None, EDGES, 3, what="edges")
    assert resolved == "none" and keys.tolist() == [[0]] * 4
    with pytest.raises(ValueError, match="strategy must be one of"):
        category_keys(features, EDGES, 3, "kmeans")
