"""Design matrices shared by the fixed and the mixed ordinal models."""

from __future__ import annotations

import pandas as pd


def term_levels(column: pd.Series) -> list[str]:
    """Observed levels as text, the first being the reference: a categorical's order, else
    the order of first appearance (study order for tables built from a study)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().astype(str))
        return [str(c) for c in column.cat.categories if str(c) in present]
    return [str(v) for v in pd.unique(column.dropna().astype(str))]


def is_covariate(column: pd.Series) -> bool:
    """A float column enters a model as one numeric covariate, not as levels."""
    return pd.api.types.is_float_dtype(column.dtype)


def treatment_design(data: pd.DataFrame, terms: tuple[str, ...] | list[str],
                     notes: list[str]) -> tuple[list[str], dict[str, list[str]], pd.DataFrame]:
    """Treatment-coded dummies named 'term[T.level]' as patsy does, without intercept.

    Terms with a single level are dropped with a note. A float column (``is_covariate``)
    is one column named as the term, with no levels. Returns the kept terms, their
    levels (reference first) and the dummy columns.
    """
    kept, levels, columns = [], {}, {}
    for term in terms:
        if is_covariate(data[term]):
            kept.append(term)
            levels[term] = []
            columns[term] = data[term].to_numpy(dtype=float)
            continue
        found = term_levels(data[term])
        if len(found) < 2:
            notes.append(f"term {term!r} dropped: it has a single level ({found[0]})")
            continue
        kept.append(term)
        levels[term] = found
        values = data[term].astype(str).to_numpy()
        for level in found[1:]:
            columns[f"{term}[T.{level}]"] = (values == level).astype(float)
    return kept, levels, pd.DataFrame(columns, index=data.index)
