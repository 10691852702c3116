"""Model formulas over the tidy columns, R style: ``score ~ style + detail + (1|rater)``.

``a * b`` is ``a + b + a:b``; ``a:b`` is the interaction of two categorical columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from glidemed.errors import AnalysisError

DEFAULT_FORMULA = "score ~ style + detail + condition"
_RANDOM = re.compile(r"^\(\s*1\s*\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Formula:
    response: str
    fixed: tuple[str, ...]  # categorical fixed-effect terms, in order ('a:b': an interaction)
    random: tuple[str, ...]  # grouping factors of random intercepts

    @property
    def is_mixed(self) -> bool:
        return bool(self.random)

    def __str__(self) -> str:
        terms = list(self.fixed) + [f"(1|{g})" for g in self.random]
        return f"{self.response} ~ {' + '.join(terms) if terms else '1'}"


def parse_formula(text: str, columns: list[str] | None = None) -> Formula:
    """Parse ``text``; with ``columns``, every name must be one of them."""
    if text.count("~") != 1:
        raise AnalysisError(f"--model {text!r}: expected 'score ~ term + term + (1|group)'")
    lhs, rhs = (part.strip() for part in text.split("~"))
    if not _NAME.match(lhs):
        raise AnalysisError(f"--model {text!r}: the response {lhs!r} is not a column name")
    fixed, random = [], []
    for term in _split_terms(rhs):
        if term in ("1", ""):
            continue
        match = _RANDOM.match(term)
        factors = [f.strip() for f in re.split(r"[*:]", term)]
        if match:
            random.append(match.group(1))
        elif _NAME.match(term):
            fixed.append(term)
        elif len(factors) == 2 and all(_NAME.match(f) for f in factors) and factors[0] != factors[1]:
            a, b = factors
            fixed += [a, b, f"{a}:{b}"] if "*" in term else [f"{a}:{b}"]
        else:
            raise AnalysisError(f"--model {text!r}: cannot read term {term!r} (use column names, "
                                "interactions of two like style * variant, and random "
                                "intercepts like (1|rater))")
    if columns is not None:
        names = [n for term in fixed for n in term.split(":")]
        unknown = list(dict.fromkeys(n for n in [lhs, *names, *random] if n not in columns))
        if unknown:
            raise AnalysisError(f"--model {text!r}: term(s) {', '.join(unknown)} name no column "
                                f"(columns: {', '.join(columns)})")
    return Formula(lhs, tuple(dict.fromkeys(fixed)), tuple(dict.fromkeys(random)))


def _split_terms(rhs: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in rhs:
        depth += char == "("
        depth -= char == ")"
        if char == "+" and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return terms
