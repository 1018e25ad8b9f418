import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkd.condense.mining import TooManyItemsetsError, _brute_force_frequent_itemsets, fpgrowth, resolve_min_support

transactions_strategy = st.lists(st.sets(st.integers(0, 7), max_size=6), max_size=14)


@settings(max_examples=300, deadline=None)
@given(transactions=transactions_strategy, min_count=st.integers(1, 5))
def test_matches_brute_force(transactions, min_count):
    assert fpgrowth(transactions, min_count) == _brute_force_frequent_itemsets(transactions, min_count)


@settings(max_examples=100, deadline=None)
@given(transactions=transactions_strategy, fraction=st.floats(0.05, 1.0), max_length=st.integers(1, 3))
def test_relative_support_and_max_length(transactions, fraction, max_length):
    expected = _brute_force_frequent_itemsets(transactions, fraction, max_length)
    assert fpgrowth(transactions, fraction, max_length=max_length) == expected


def test_textbook_example():
    # Han et al.'s running example, items renamed to ints: f=0, c=1, a=2, b=3, m=4, p=5, ...
    transactions = [
        {0, 2, 1, 6, 7, 8, 4, 5},
        {2, 3, 1, 0, 9, 4, 10},
        {3, 0, 11, 12, 10},
        {3, 1, 13, 14, 5},
        {2, 0, 1, 15, 9, 16, 4, 5},
    ]
    result = fpgrowth(transactions, 3)
    assert result[frozenset({0, 1, 2, 4})] == 3  # {f, c, a, m}
    assert result[frozenset({1, 5})] == 3  # {c, p}
    assert frozenset({0, 5}) not in result  # {f, p} has support 2
    assert len(result) == len(_brute_force_frequent_itemsets(transactions, 3))


def test_duplicate_items_count_once():
    assert fpgrowth([[1, 1, 2], [1]], 2) == {frozenset({1}): 2}


def test_larger_random_input_against_mlxtend():
    pd = pytest.importorskip("pandas")
    mlxtend = pytest.importorskip("mlxtend.frequent_patterns")
    rng = random.Random(0)
    transactions = [rng.sample(range(40), rng.randint(3, 15)) for _ in range(300)]
    ours = fpgrowth(transactions, 0.06)
    table = pd.DataFrame([[item in set(t) for item in range(40)] for t in transactions], columns=list(range(40)))
    theirs = mlxtend.fpgrowth(table, min_support=0.06, use_colnames=True)
    expected = {frozenset(row.itemsets): round(row.support * len(transactions)) for row in theirs.itertuples()}
    assert ours == expected and len(ours) > 100


@pytest.mark.parametrize(
    "value, error, message",
    [
        (0, ValueError, "count must be >= 1"),
        (1.5, ValueError, r"fraction must lie in \(0, 1\]"),
        (0.0, ValueError, r"fraction must lie in \(0, 1\]"),
        (True, TypeError, "got a bool"),
        ("3", TypeError, "got str"),
    ],
)
def test_bad_support(value, error, message):
    with pytest.raises(error, match=message):
        fpgrowth([[1]], value)


def test_resolve_min_support():
    assert resolve_min_support(0.3, 10) == 3
    assert resolve_min_support(0.31, 10) == 4
    assert resolve_min_support(1.0, 7) == 7
    assert resolve_min_support(5, 2) == 5
    with pytest.raises(ValueError, match="max_length"):
        fpgrowth([[1]], 1, max_length=0)


def test_itemset_cap_stops_an_explosion():
    # Every subset of 20 items in all transactions is frequent: 2^20 - 1 itemsets.
    transactions = [list(range(20))] * 3
    with pytest.raises(TooManyItemsetsError, match="more than max_itemsets=1000"):
        fpgrowth(transactions, 2, max_itemsets=1000)
    ten = [list(range(10))] * 2
    assert len(fpgrowth(ten, 2, max_itemsets=1023)) == 1023  # the cap is inclusive
    with pytest.raises(TooManyItemsetsError):
        fpgrowth(ten, 2, max_itemsets=1022)
    with pytest.raises(ValueError, match="max_itemsets must be an int >= 1"):
        fpgrowth(transactions, 2, max_itemsets=0)
