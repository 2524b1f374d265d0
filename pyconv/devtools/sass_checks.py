"""Claims about each kernel's machine code, checked on its SASS (``kernels/sass_checks.json``).

The table maps entry-point names or fnmatch patterns to a rule::

    {"*":              {"forbid": ["LDL", "STL"], "why": "no local memory"},
     "softmax_*":      {"require": ["SHFL"], "why": "warp-shuffle row reductions"},
     "big_kernel_f64": {"allow": ["LDL", "STL"], "why": "..."}}

A function gets the union of the ``require`` and ``forbid`` lists of every pattern it matches,
minus the opcodes some matching pattern ``allow``s. A claim is a substring of an opcode with its
modifiers: ``"LDG.E.128"`` matches ``LDG.E.128.CONSTANT``, ``"SHFL"`` matches ``SHFL.DOWN``.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from .._sources import kernels_dir

__all__ = ["load", "rules_for", "sass_checks_path", "unused_patterns", "violations"]

_RULE_KEYS = {"require", "forbid", "allow", "why"}


def sass_checks_path() -> Path:
    return kernels_dir() / "sass_checks.json"


def load(path: Path | None = None) -> dict[str, dict]:
    """The table; ValueError naming the pattern when a rule has a key other than
    require / forbid / allow / why (a typo would otherwise silently check nothing)."""
    table = json.loads(Path(path or sass_checks_path()).read_text())
    for pattern, rule in table.items():
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise ValueError(f"sass_checks.json: rule {pattern!r} has unknown keys "
                             f"{sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    return table


def rules_for(function: str, table: dict[str, dict]) -> tuple[set[str], set[str]]:
    """``(required, forbidden)`` opcode claims for one function."""
    require, forbid, allow = set(), set(), set()
    for pattern, rule in table.items():
        if fnmatch.fnmatchcase(function, pattern):
            require.update(rule.get("require", ()))
            forbid.update(rule.get("forbid", ()))
            allow.update(rule.get("allow", ()))
    return require, forbid - allow


def _opcode(instruction: str) -> str:
    return instruction.split(maxsplit=1)[0]


def violations(listing: dict[str, list[str]], table: dict[str, dict]) -> list[str]:
    """Every broken claim, one message each, for a ``{function: [instruction, ...]}`` listing."""
    found = []
    for function, instructions in sorted(listing.items()):
        require, forbid = rules_for(function, table)
        opcodes = [_opcode(i) for i in instructions]
        for claim in sorted(require):
            if not any(claim in op for op in opcodes):
                found.append(f"{function}: no {claim} instruction (required by "
                             f"sass_checks.json); opcodes present: {sorted(set(opcodes))}")
        for claim in sorted(forbid):
            hits = [i for i, op in zip(instructions, opcodes) if claim in op]
            if hits:
                found.append(f"{function}: {len(hits)} forbidden {claim} instruction(s), "
                             f"e.g. {hits[0]!r}")
    return found


def unused_patterns(table: dict[str, dict], entries) -> list[str]:
    """Patterns that match no entry point: a renamed or deleted kernel left its claim behind."""
    entries = list(entries)
    return [p for p in table if not any(fnmatch.fnmatchcase(e, p) for e in entries)]
