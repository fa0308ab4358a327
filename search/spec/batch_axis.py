"""The batch-size axis: one verdict per batch size, the lr scaled with the batch, critical batch sizes.

LARS was made to keep accuracy as the batch grows (You, Gitman and Ginsburg, *Large Batch
Training of Convolutional Networks*, arXiv:1708.03888, 2017). A study file asks that
question with::

    axis:
      batch_size: [64, 256, 1024, 4096]
      lr_scaling: auto          # auto | linear | sqrt | none (default auto)
      tolerance: 1.0            # points of test accuracy for the critical batch size (default 1.0)

The file's own ``objective.batch_size`` is the *reference* batch B0 for which its lr
ranges and recipes are written. For each batch B on the axis the study runs as its own
study ``<name>-b<B>`` (all arms, replicates and final evaluation, in the same storage),
with every lr range, choice, fixed value and recipe lr multiplied by

    f(B) = (B / B0) ** p,   p = 1 (linear), 1/2 (sqrt), 0 (none)

``auto`` takes p = 1 for SGD (Goyal et al. 2017, arXiv:1706.02677: linear scaling) and
p = 1/2 for the adaptive optimizers (Adam, AdamW, RMSprop, Adagrad; Malladi et al. 2022,
arXiv:2205.10287: square-root scaling), for plain and LARS arms alike, so a LARS arm and
its twin see the same scaled range. ``lr: auto`` arms are not scaled: their range test
runs at each batch size.

The critical batch size of an arm (Shallue et al. 2018, arXiv:1811.03600, measured here
at a fixed epoch budget): the largest batch whose test accuracy stays within a tolerance
``tol`` of the smallest batch's. With the drop ``d_B = acc(B_min) - acc(B)`` and its 95%
interval ``[lo_B, hi_B]`` (from :mod:`search.results.verdict`):

* B is *kept* when ``hi_B <= tol`` (the drop is surely within the tolerance),
  *lost* when ``lo_B > tol`` (surely beyond it), *unclear* otherwise;
* walking up the axis, the critical batch size is the last kept batch before the first
  batch that is not kept. If that batch is lost, it is *determined*; if it is unclear,
  it is *undetermined* (between the last kept batch and the next lost one, or the end of
  the axis); if every batch is kept, it is *not reached* (at least the largest batch).
"""

from __future__ import annotations

from dataclasses import dataclass

from search.errors import SpecError
from search.spec.arms import _got, _mapping
from search.spec.space import Auto, Choice, Fixed, Range

__all__ = [
    "LR_SCALING",
    "ADAPTIVE",
    "scaling_power",
    "lr_factor",
    "CriticalBatch",
    "critical_batch_size",
    "compare_critical",
    "AxisSpec",
    "parse_axis",
    "scale_dimension",
]

LR_SCALING = ("auto", "linear", "sqrt", "none")
# Optimizers whose per-coordinate normalisation makes the square-root rule the usual one.
ADAPTIVE = ("adam", "adamw", "rmsprop", "adagrad")


def scaling_power(rule: str, optimizer: str) -> float:
    """The exponent p of ``(B / B0) ** p`` for ``rule`` and a base ``optimizer``.

    >>> scaling_power("auto", "sgd"), scaling_power("auto", "adam"), scaling_power("none", "sgd")
    (1.0, 0.5, 0.0)
    """
    if rule not in LR_SCALING:
        raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALING)}, got {rule!r}")
    if rule == "auto":
        return 0.5 if optimizer in ADAPTIVE else 1.0
    return {"linear": 1.0, "sqrt": 0.5, "none": 0.0}[rule]


def lr_factor(rule: str, optimizer: str, batch_size: int, reference: int) -> float:
    """``f = (batch_size / reference) ** p``: what the lr written for ``reference`` is multiplied by.

    >>> lr_factor("linear", "sgd", 1024, 128), lr_factor("auto", "adam", 512, 128), lr_factor("auto", "adam", 32, 128)
    (8.0, 2.0, 0.5)
    """
    if batch_size < 1 or reference < 1:
        raise ValueError(f"batch sizes must be >= 1, got batch_size={batch_size!r}, reference={reference!r}")
    return (batch_size / reference) ** scaling_power(rule, optimizer)


@dataclass(frozen=True)
class CriticalBatch:
    """An arm's critical batch size.

    ``status`` is ``"determined"`` (``batch`` kept, the next batch lost), ``"undetermined"``
    (``batch`` the last surely kept, ``upper`` the first surely lost, or None when no larger batch is),
    ``"not reached"`` (every batch kept: at least ``batch``), ``"one replicate"`` (not judged: one search
    per arm and batch cannot tell the arm from the search's luck), or ``"no data"``.
    """

    status: str
    batch: int | None = None
    upper: int | None = None

    def describe(self) -> str:
        if self.status == "determined":
            return f"{self.batch}"
        if self.status == "not reached":
            return f">= {self.batch} (not reached)"
        if self.status == "undetermined":
            above = f"< {self.upper}" if self.upper is not None else "no larger batch surely lost"
            return f"undetermined: >= {self.batch}, {above}" if self.batch is not None else f"undetermined: {above}"
        if self.status == "one replicate":
            return "not judged with one replicate (replicates: 2 or more)"
        return "no data yet (the smallest batch has no final evaluation)"


def critical_batch_size(drops: list[tuple[int, float, float]], tolerance: float) -> CriticalBatch:
    """The critical batch size from ``(batch, lo, hi)``: the 95% interval of each batch's drop.

    ``drops`` runs over the axis in increasing batch order, starting with the smallest batch
    (its own drop, 0, is not needed: the smallest batch is kept by definition). A batch without
    results is given as ``(batch, nan, nan)`` and counts as unclear.

    >>> critical_batch_size([(64, 0, 0), (256, -0.5, 0.8), (1024, 1.2, 3.0)], tolerance=1.0).describe()
    '256'
    """
    if not drops:
        return CriticalBatch("no data")
    batches = [b for b, _, _ in drops]
    if batches != sorted(set(batches)):
        raise ValueError(f"drops must be in increasing batch order, got batches {batches}")
    kept = drops[0][0]
    for batch, lo, hi in drops[1:]:
        if hi <= tolerance:  # NaN compares False: a batch without results is not kept
            kept = batch
            continue
        if lo > tolerance:
            return CriticalBatch("determined", kept, batch)
        lost = next((b for b, lo2, _ in drops if b > batch and lo2 > tolerance), None)
        return CriticalBatch("undetermined", kept, lost)
    return CriticalBatch("not reached", kept)


@dataclass(frozen=True)
class AxisSpec:
    """A study file's ``axis``: the batch sizes (increasing), the lr rule, the reference batch B0, the
    critical batch size's tolerance in points."""

    batch_sizes: tuple[int, ...]
    lr_scaling: str
    reference: int
    tolerance: float = 1.0


def parse_axis(raw: object, source: str, reference: int) -> AxisSpec:
    """Validate a study file's ``axis`` mapping; raises :class:`search.spec.arms.SpecError` naming the key."""
    data = _mapping(raw, source, "axis")
    for key in data:
        if key not in ("batch_size", "lr_scaling", "tolerance"):
            raise SpecError(
                source, f"axis.{key}", "unknown key; an axis runs over batch_size (allowed: batch_size, lr_scaling, "
                "tolerance)",
            )  # fmt: skip
    if "batch_size" not in data:
        raise SpecError(source, "axis.batch_size", "required (a list of batch sizes, e.g. [64, 256, 1024])")
    values = data["batch_size"]
    rule = "a list of at least 2 distinct integers >= 2"
    if (
        not isinstance(values, list)
        or len(values) < 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 2 for v in values)
        or len(set(values)) != len(values)
    ):
        raise SpecError(source, "axis.batch_size", f"must be {rule}, got {_got(values)}")
    scaling = data.get("lr_scaling", "auto")
    if scaling not in LR_SCALING:
        raise SpecError(source, "axis.lr_scaling", f"must be one of {', '.join(LR_SCALING)}, got {_got(scaling)}")
    tolerance = data.get("tolerance", 1.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 100:
        raise SpecError(source, "axis.tolerance", f"must be points of accuracy in (0, 100), got {_got(tolerance)}")
    return AxisSpec(tuple(sorted(values)), scaling, reference, float(tolerance))


def scale_dimension(dim: object, factor: float) -> object:
    """An lr dimension with every value multiplied by ``factor``; ``lr: auto`` is left to its range test."""
    from dataclasses import replace

    if factor == 1.0 or isinstance(dim, Auto):
        return dim
    if isinstance(dim, Fixed):
        return Fixed(dim.value * factor)
    if isinstance(dim, Choice):
        return Choice(tuple(c * factor for c in dim.choices))
    if isinstance(dim, Range):
        step = dim.step * factor if dim.step is not None else None
        return replace(dim, low=dim.low * factor, high=dim.high * factor, step=step)
    raise TypeError(f"not a dimension: {dim!r}")


def compare_critical(lars: CriticalBatch, plain: CriticalBatch) -> str:
    """Whether LARS extends the critical batch size of its plain twin, judged on both sides' certainty.

    Extends: LARS surely keeps a batch that the plain arm surely loses. Shortens: the reverse.
    The same: both determined at one batch. Otherwise it cannot be told at this budget.
    """
    if "no data" in (lars.status, plain.status):
        return "cannot tell yet (no data)"
    if "one replicate" in (lars.status, plain.status):
        return "not judged with one replicate"
    if plain.upper is not None and lars.batch is not None and lars.batch >= plain.upper:
        return "LARS extends it"
    if lars.upper is not None and plain.batch is not None and plain.batch >= lars.upper:
        return "LARS shortens it"
    if lars.status == plain.status == "determined" and lars.batch == plain.batch:
        return "the same"
    if lars.status == plain.status == "not reached":
        return "neither reached on this axis"
    return "cannot tell at this budget"
