"""ncbook.tables: numbers formatted for reading, bad column names named, HTML with the course's class."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncbook import tables


@pytest.mark.parametrize(("x", "expected"), [
    (0.0, "0"), (0.5, "0.5"), (0.123456, "0.123"), (12.345, "12.3"), (1234.5, "1234"),
    (2.5e-9, "2.50e-09"), (3e7, "3.00e+07"), (-0.25, "-0.25"), (7, "7"), (np.int64(3), "3"),
    (np.float32(0.5), "0.5"), (float("nan"), "—"), (True, "True"), ("run", "run"),
])
def test_number_formats(x, expected):
    assert tables.number(x) == expected


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_number_keeps_three_significant_digits(x):
    s = tables.number(x)
    assert math.isclose(float(s), x, rel_tol=6e-3, abs_tol=0)


def test_table_shows_named_index_and_hides_a_plain_one():
    rows = [{"K": 3, "loss": 0.1234567}, {"K": 4, "loss": 1e-9}]
    plain = tables.table(rows).to_html()
    assert "ncbook-table" in plain and "0.123" in plain and "1.00e-09" in plain
    assert "row0" in plain and ">0<" not in plain  # the 0..n-1 index is hidden
    by_k = tables.table(rows, index="K", caption="Loss by class count")
    html = by_k.to_html()
    assert by_k.data.index.name == "K" and "Loss by class count" in html


def test_table_formats_and_columns():
    df = pd.DataFrame({"tau": [1.0, 10.0], "nc1": [0.5, 2e-7], "note": ["a", "b"]})
    t = tables.table(df, columns=["tau", "nc1"], formats={"tau": "{:g}"})
    assert list(t.data.columns) == ["tau", "nc1"] and "note" not in t.to_html()


@pytest.mark.parametrize("kwargs", [{"columns": ["nope"]}, {"index": "nope"}, {"formats": {"nope": "{}"}}])
def test_table_names_a_missing_column(kwargs):
    with pytest.raises(ValueError, match="nope"):
        tables.table([{"a": 1}], **kwargs)
