"""How lars-search names its Optuna studies, in one place.

One study file ``name``, arm ``a``, replicate ``r`` (``replicates: N``)::

    name/a            replicate 0's search (the name every earlier version used)
    name/a/r1 ...     the searches of replicates 1..N-1, with other sampler seeds
    name/a/eval       replicate 0's final evaluation; name/a/r1/eval ... the others'

A study file with a batch-size ``axis`` is run once per batch size B under the name
``name-bB`` (:func:`axis_name`), whose studies follow the scheme above. Other studies in a
storage (not ours) do not parse: :meth:`StudyName.parse` returns None for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["EVAL", "StudyName", "unit_key", "axis_name"]

EVAL = "eval"


def unit_key(arm: str, replicate: int) -> str:
    """One search within a study file: ``sgd`` (replicate 0), ``sgd/r1``, ... (the keys of per-search tables)."""
    return arm if replicate == 0 else f"{arm}/r{replicate}"


def axis_name(name: str, batch_size: int) -> str:
    """The study file name of one axis value: ``quickstart`` at batch 256 is ``quickstart-b256``."""
    return f"{name}-b{batch_size}"


@dataclass(frozen=True)
class StudyName:
    """An Optuna study name of ours: ``name/arm[/rN][/eval]`` (see the module docstring)."""

    name: str
    arm: str
    replicate: int = 0
    evaluation: bool = False

    @classmethod
    def parse(cls, text: str) -> StudyName | None:
        """``"q/sgd/r1/eval"`` -> ``StudyName("q", "sgd", 1, True)``; None for studies that are not ours."""
        parts = text.split("/")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            return None
        rest, evaluation = parts[2:], False
        if rest and rest[-1] == EVAL:
            rest, evaluation = rest[:-1], True
        replicate = 0
        if rest:
            if len(rest) > 1 or not rest[0].startswith("r") or not rest[0][1:].isdigit() or int(rest[0][1:]) < 1:
                return None
            replicate = int(rest[0][1:])
        return cls(parts[0], parts[1], replicate, evaluation)

    def format(self) -> str:
        """The study name in the storage; ``StudyName.parse(n.format()) == n``."""
        return f"{self.name}/{unit_key(self.arm, self.replicate)}" + (f"/{EVAL}" if self.evaluation else "")

    __str__ = format

    @property
    def unit(self) -> str:
        """:func:`unit_key` of this search: ``sgd``, ``sgd/r1``, ..."""
        return unit_key(self.arm, self.replicate)

    def search(self) -> StudyName:
        """The search study (this one, or the one an evaluation study evaluates)."""
        return replace(self, evaluation=False)

    def final_evaluation(self) -> StudyName:
        """The final-evaluation study of this search."""
        return replace(self, evaluation=True)
