"""Results as HTML tables: the one way the chapters show a table.

A chapter builds a :class:`pandas.DataFrame` (or a list of row dicts) and returns
``tables.table(rows, ...)`` as the last expression of a cell. What comes back is a pandas
:class:`~pandas.io.formats.style.Styler`: Jupyter, Colab and the built book render it as an HTML
table with the class ``ncbook-table`` (styled by ``book/_css/ncbook.css``: compact, numbers
right-aligned, scrolling inside its own box on a phone), and its ``data`` attribute is the frame
itself, so the next cell can assert what the prose says about it.

Introduced in: chapter 01 (neural collapse).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

__all__ = ["table", "number"]


def number(x, digits: int = 3) -> str:
    """Format one table entry: ``digits`` significant digits, scientific notation when tiny or huge.

    Parameters
    ----------
    x : object
        A number (Python, numpy or a 0-d tensor via ``float``); anything else is returned as ``str(x)``.
    digits : int
        Significant digits (at least 1).

    Returns
    -------
    str
        ``"1.23e-08"``, ``"0.123"``, ``"12.3"``, ``"1234"``; ``"—"`` for NaN; integers as integers.

    Examples
    --------
    >>> number(3.14159), number(1.5e-9), number(42), number(float("nan"))
    ('3.14', '1.50e-09', '42', '—')
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Number):
        return str(x)
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "—"
    if x == 0 or 1e-3 <= abs(x) < 10**digits:
        return f"{x:.{digits}g}"
    if 10**digits <= abs(x) < 1e6:
        return f"{x:.0f}"
    return f"{x:.{max(digits - 1, 0)}e}"


def table(rows, *, columns: Sequence[str] | None = None, index: str | None = None,
          formats: Mapping[str, str | Callable] | None = None, digits: int = 3,
          caption: str | None = None):
    """Return an HTML table of results (a pandas ``Styler``) in the course's style.

    Parameters
    ----------
    rows : pandas.DataFrame, sequence of mappings, or mapping of column -> sequence
        The results, one row per entry. A frame is used as it is (not copied).
    columns : sequence of str, optional
        Columns to show, in this order (default: all).
    index : str, optional
        A column to show as the row labels (at the left, bold). By default the frame's index is shown
        only when it is named (``DataFrame.index.name``); a plain 0..n-1 index is hidden.
    formats : mapping of column -> format string or callable, optional
        Per-column formatting, e.g. ``{"tau": "{:g}"}``; other numeric columns use :func:`number`.
    digits : int
        Significant digits of :func:`number` for columns without a format.
    caption : str, optional
        A line above the table that says what it holds.

    Returns
    -------
    pandas.io.formats.style.Styler
        Rendered as HTML by Jupyter and the book; ``.data`` is the (selected) frame.

    Raises
    ------
    ValueError
        If ``columns``, ``index`` or a key of ``formats`` is not a column of ``rows``.

    Examples
    --------
    >>> t = table([{"K": 3, "loss": 0.1234567}, {"K": 4, "loss": 1e-9}], index="K")
    >>> t.data["loss"].tolist()
    [0.1234567, 1e-09]
    >>> "ncbook-table" in t.to_html()
    True
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    for name, wanted in (("columns", columns or []), ("formats", list(formats or {}))):
        missing = [c for c in wanted if c not in df.columns and c != df.index.name]
        if missing:
            raise ValueError(f"{name}: {missing} are not columns of the table; columns: {list(df.columns)}")
    if index is not None:
        if index not in df.columns:
            raise ValueError(f"index: {index!r} is not a column of the table; columns: {list(df.columns)}")
        df = df.set_index(index)
    if columns is not None:
        df = df[[c for c in columns if c != df.index.name]]
    fmt = {c: (lambda v, d=digits: number(v, d)) for c in df.columns}
    fmt.update(formats or {})
    styler = df.style.format({c: f for c, f in fmt.items() if c in df.columns})
    if df.index.name is None:
        styler = styler.hide(axis="index")
    else:
        styler = styler.format_index(lambda v: number(v, digits), axis="index")
    if caption:
        styler = styler.set_caption(caption)
    return styler.set_table_attributes('class="ncbook-table"')
