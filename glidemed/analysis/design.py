"""Design matrices shared by the fixed and the mixed ordinal models."""

from __future__ import annotations

import numpy as np
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
    is one column named as the term, with no levels. An interaction 'a:b' of two
    categorical terms adds the products of their dummies (see _interactions). Returns the
    kept terms, their levels (reference first) and the dummy columns.
    """
    kept, levels, columns = [], {}, {}
    for term in terms:
        if ":" in term:
            continue  # interactions after the main effects, see _interactions
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
    main = pd.DataFrame(columns, index=data.index)
    pairs = [t for t in terms if ":" in t]
    if not pairs:
        return kept, levels, main
    extra = _interactions(data, pairs, main, kept, levels, notes)
    kept += [t for t in pairs if any(interaction_of(c) == t for c in extra.columns)]
    return kept, levels, pd.concat([main, extra], axis=1)


def interaction_of(column: str) -> str:
    """'a[T.x]:b[T.y]' -> 'a:b' (the term of a product column); '' for other columns."""
    parts = column.split("]:")
    if len(parts) != 2:
        return ""
    return f"{parts[0].split('[T.')[0]}:{parts[1].split('[T.')[0]}"


def _interactions(data: pd.DataFrame, pairs: list[str], main: pd.DataFrame, kept: list[str],
                  levels: dict[str, list[str]], notes: list[str]) -> pd.DataFrame:
    """Columns 'a[T.x]:b[T.y]' (products of the main effects' dummies, as patsy and R name
    them) of the categorical pairs; a product that no rating has, or that the main effects
    and earlier products already span (a level of b found with one level of a only), is
    not estimable and left out with a note, as R's clm reports it aliased."""
    from glidemed.errors import AnalysisError

    columns = {}
    for term in pairs:
        a, b = term.split(":")
        if a not in kept or b not in kept or not levels[a] or not levels[b]:
            why = "covariates" if (is_covariate(data[a]) or is_covariate(data[b])) else "one level"
            if why == "covariates":
                raise AnalysisError(f"--model: interaction {term}: both terms must be categorical")
            notes.append(f"interaction {term!r} dropped: a term of it has a single level")
            continue
        for x in levels[a][1:]:
            for y in levels[b][1:]:
                columns[f"{a}[T.{x}]:{b}[T.{y}]"] = (main[f"{a}[T.{x}]"] * main[f"{b}[T.{y}]"]).to_numpy()
    basis = np.column_stack([np.ones(len(main)), main.to_numpy(float)])
    rank = np.linalg.matrix_rank(basis)
    kept_columns = {}
    for name, column in columns.items():
        trial = np.column_stack([basis, column])
        if column.any() and np.linalg.matrix_rank(trial) > rank:
            basis, rank = trial, rank + 1
            kept_columns[name] = column
        else:
            notes.append(f"coefficient {name} not estimable (no ratings of that combination, or "
                         "aliased with other terms): dropped")
    return pd.DataFrame(kept_columns, index=main.index)
