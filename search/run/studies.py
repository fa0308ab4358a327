"""Create or load the Optuna studies of a study file: one per arm and replicate.

A study file is stored with its studies (user attr ``study_file``, every URL password
masked: whoever reads the database or its dashboard reads it; a run also masks one that
an earlier version stored). Running a file whose arms differ from what is stored under
the same name is refused before anything is written (:class:`SpecConflictError`), since
the trials would not be comparable; so is a file whose objective differs from that of
arms another file stored under the name. A new search's trial 0 is its arm's published
recipe (:mod:`search.spec.recipe`).

``replicates`` and ``evaluation.seeds`` may be raised between runs of one name (more
searches, more seeds per incumbent: the usual way to sharpen a verdict): the new values
are stored on every arm's study (user attr ``final``, :func:`stored_final`) and compare,
the verdict, the note and export read them from there. Lowering either is refused
before anything is written: finished searches or seeds would silently drop out of the
verdict (and choosing which to keep after seeing them is selective reporting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from search.errors import SpecConflictError, SpecError
from search.names import StudyName, unit_key
from search.results.stored import FINAL_ATTR, stored_final
from search.run._samplers import build_pruner, build_sampler
from search.seeds import sampler_offset
from search.spec.recipe import clamp_notes, needs_recipe_later, published_recipe, recipe_params
from search.spec.study_file import SPEC_VERSION, Arm, StudySpec, load_yaml, parse_spec
from search.storage.budget import arm_lock
from search.storage.url import mask_text, mask_url

__all__ = ["stored_spec", "enqueue_recipe", "open_studies"]


def stored_spec(storage: Any, study_name: str) -> StudySpec | None:
    """The study file stored with ``study_name`` (parsed), or None when no such study exists."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    text = storage.get_study_user_attrs(study_id).get("study_file")
    if text is None:
        return None
    spec = parse_spec(load_yaml(text, study_name), source=f"stored study file of {study_name!r}", text=text)
    # a study of a batch-size axis stores the whole file: its own batch's spec is the one named like it
    return next((s for s in spec.per_batch if study_name.startswith(f"{s.name}/")), spec)


def _check_final(spec: StudySpec, storage: Any, url: str) -> None:
    """Refuse lowering ``replicates`` or ``evaluation.seeds`` below what a run of this name used (raising is fine)."""
    for arm in spec.arms:
        name = spec.study_name(arm)
        try:
            attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
        except KeyError:
            continue
        seeds, replicates = stored_final(attrs)
        for key, old, new in (("replicates", replicates, spec.final.replicates),
                              ("evaluation.seeds", seeds, spec.final.seeds)):  # fmt: skip
            if new < old:
                raise SpecConflictError(
                    f"{spec.source}: {key} is {new}, but the stored study {name!r} in {mask_url(url)} ran with "
                    f"{old}; lowering it would leave finished runs out of the verdict (use {key}: {old} or more, "
                    "or a new name)"
                )


def _record_final(spec: StudySpec, study: optuna.Study) -> None:
    """Store this run's seeds and replicates on an arm's study where they differ from what it holds."""
    wanted = (spec.final.seeds, spec.final.replicates)
    if stored_final(study.user_attrs) != wanted:
        study.set_user_attr(FINAL_ATTR, {"seeds": wanted[0], "replicates": wanted[1]})


def _first_difference(old: Any, new: Any, path: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            diff = _first_difference(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}.{key}" if path else str(key)
            )
            if diff:
                return diff
        return None
    return None if old == new else f"{path} was {old!r}, now {new!r}"


def _check_conflicts(spec: StudySpec, storage: Any, url: str) -> None:
    for arm in spec.arms:
        name = spec.study_name(arm)
        try:
            old = stored_spec(storage, name)
        except SpecError as exc:
            raise SpecConflictError(
                f"{spec.source}: stored study {name!r} in {mask_url(url)} has a study file that no longer "
                f"validates ({exc.message}); use a new name"
            ) from None
        if old is None:
            continue
        try:
            old_arm = old.arm(arm.name)
        except KeyError:
            raise SpecConflictError(
                f"{spec.source}: stored study {name!r} in {mask_url(url)} has no arm {arm.name!r} in its study "
                "file; use a new name"
            ) from None
        diff = _first_difference(old.identity(old_arm), spec.identity(arm), "")
        if diff:
            raise SpecConflictError(
                f"{spec.source}: arm {arm.name!r} conflicts with the stored study {name!r} in {mask_url(url)}: "
                f"{diff} (trials would not be comparable; use a new name or the original file)"
            )
    _check_other_arms(spec, storage, url)


def _check_other_arms(spec: StudySpec, storage: Any, url: str) -> None:
    """Arms stored under the name that this file does not have must share its objective (another file's
    arms on another objective would be ranked beside these as if comparable)."""
    ours = {arm.name for arm in spec.arms}
    for stored in storage.get_all_studies():
        ref = StudyName.parse(stored.study_name)
        if ref is None or ref.name != spec.name or ref.evaluation or ref.replicate or ref.arm in ours:
            continue
        try:
            old = stored_spec(storage, stored.study_name)
        except SpecError:
            old = None
        if old is None or not old.arms:
            continue
        diff = _first_difference(old.identity(old.arms[0])["objective"], spec.identity(spec.arms[0])["objective"],
                                 "objective")  # fmt: skip
        if diff:
            raise SpecConflictError(
                f"{spec.source}: name {spec.name!r} is taken in {mask_url(url)} by another study file (stored with "
                f"{stored.study_name!r}), and {diff} (the arms' trials would not be comparable; use a new name or "
                "the original file)"
            )


def _storage_of(text: str) -> str | None:
    """The ``storage`` URL a stored study file names (None if it names none or does not parse)."""
    try:
        data = load_yaml(text, "<stored study file>")
    except SpecError:
        return None
    storage = data.get("storage") if isinstance(data, dict) else None
    return storage if isinstance(storage, str) else None


def enqueue_recipe(
    spec: StudySpec, arm: Arm, study: optuna.Study, *, tested: bool = False, log: Callable[[str], None] | None = None
) -> None:
    """Trial 0 of a new search is the arm's recipe (``search.spec.recipe``), enqueued once under the arm's lock.

    The recipe is clamped into the arm's space as it is now (after a range test); what the
    clamp moved is stored in the trial's user attr ``recipe_clamped`` and said to ``log``
    (``tested``: the arm's lr range came from its range test).
    """
    recipe = spec.final.recipes.get(arm.name)
    if recipe is None or needs_recipe_later(arm):
        return  # no recipe, or lr: auto (enqueued by search.run.loop's run once the range test has set the range)
    source = recipe[1]
    if source == "published":
        config = published_recipe(arm.optimizer, arm.lars, spec.objective["epochs"])
    else:  # the file's own values were checked against the space when it was read; an lr: auto range is new
        config = spec.final.configs[arm.name]
    params = recipe_params(arm, config)
    notes = clamp_notes(arm, config, params, tested=tested)
    with arm_lock(study):
        if study.get_trials(deepcopy=False):
            return
        study.enqueue_trial(params, user_attrs={"recipe": source, **({"recipe_clamped": notes} if notes else {})})
    for note in notes if log is not None else ():
        log(f"{study.study_name}: recipe ({source}): {note}")


def open_studies(
    spec: StudySpec, storage: Any, *, worker_id: int | None = None, url: str = "<storage>"
) -> dict[str, optuna.Study]:
    """Create or load the search study of every arm and replicate, after checking for conflicts.

    Keys are :func:`search.names.unit_key` (the arm's name for replicate 0); study names are
    :class:`search.names.StudyName` (``<name>/<arm>``, ``<name>/<arm>/r1``, ...).
    Nothing is written when the file conflicts with stored studies. A new study gets the
    user attrs ``study_file`` (the YAML text), ``arm``, ``replicate`` and ``spec_version``,
    and its recipe as trial 0 (:mod:`search.spec.recipe`). Each search's sampler seed is
    ``sampler.seed + len(existing trials) + 100003 * worker_id + 1000003 * replicate``
    (mod 2**32, :mod:`search.seeds`), so a resumed or parallel run does not replay the same random
    configurations and replicates are independent searches. Arms share the seed, so
    their random start-up trials are largely paired: in trial k, parameters drawn in the
    same order get the same quantile of each arm's own range (the quickstart drew lr
    0.0647 in [0.01, 0.3] for SGD and 0.000647 in [1e-4, 3e-3] for RMSprop), which makes
    the comparison of arms less noisy.
    """
    _check_conflicts(spec, storage, url)
    _check_final(spec, storage, url)
    studies = {}
    for replicate in range(spec.final.replicates):
        for arm in spec.arms:
            name = StudyName(spec.name, arm.name, replicate).format()
            try:
                existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
            except KeyError:
                existing = 0
            offset = sampler_offset(existing, worker_id, replicate)
            study = optuna.create_study(
                storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                sampler=build_sampler(spec, seed_offset=offset), pruner=build_pruner(spec),
            )  # fmt: skip
            stored = study.user_attrs.get("study_file")
            if stored is None:
                study.set_user_attr("study_file", mask_text(spec.text, spec.storage))
                study.set_user_attr("arm", arm.name)
                if replicate:
                    study.set_user_attr("replicate", replicate)
                study.set_user_attr("spec_version", SPEC_VERSION)
            elif mask_text(stored, spec.storage, _storage_of(stored)) != stored:  # stored by an earlier version
                study.set_user_attr("study_file", mask_text(stored, spec.storage, _storage_of(stored)))
            if replicate == 0:
                _record_final(spec, study)
            if existing == 0:
                enqueue_recipe(spec, arm, study)
            studies[unit_key(arm.name, replicate)] = study
    return studies
