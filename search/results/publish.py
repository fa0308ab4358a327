"""The verdict where users look: a study user attr and an optuna-dashboard note on each arm's study.

:func:`publish_verdict` stores, on every arm's search study (``<name>/<arm>``):

* the user attr ``verdict``: the verdict lines, ranking and warnings as plain text
  (:func:`search.results.report.format_verdict`), readable with ``study.user_attrs["verdict"]``;
* an optuna-dashboard note (``optuna_dashboard.save_note``, Markdown): the verdict, the
  compare table and, for a SQLite storage ``x.db``, the plot of
  :func:`search.results.plot.plot_compare` uploaded as a study artifact to ``x.db-artifacts/``
  (Optuna's ``FileSystemArtifactStore``), which ``lars-search dashboard`` serves, so the
  figure renders inside the note.

The note is Markdown, not a code block: each table of ``compare`` becomes a Markdown table,
its indented lines (verdict lines, ranking, warnings) a list of plain text, the other lines
paragraphs (:func:`to_markdown`). ``run`` calls :func:`publish_verdict` when every final
evaluation is done, and :func:`mark_outdated` before it trains anything more: a note
written before the arms changed says so in its title and first line until the next
verdict replaces it. ``compare`` and the dashboard only read.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from search.errors import PlotError, StudyNotFoundError
from search.names import axis_name
from search.results.axis_report import format_axis
from search.results.plot import plot_axis, plot_compare
from search.results.read import Verdict, load_arms, load_verdict
from search.results.report import format_compare, format_verdict
from search.storage.optuna_internals import rdb_backend, study_id_of
from search.storage.url import sqlite_file

__all__ = ["publish_verdict", "publish_axis", "mark_outdated", "to_markdown", "artifact_store_for"]

VERDICT_ATTR = "verdict"
OUTDATED = "outdated: "  # how the user attr ``verdict`` of an outdated note begins


def _escape(text: str, *, start: bool = True) -> str:
    """``text`` as literal Markdown text: a backslash before ``\\ ` * _ < > |``, and, where the text starts a
    block (``start``), before a leading ``#`` and the dot of a leading ``1.`` (else a heading or a list)."""
    text = re.sub(r"([\\`*_<>|])", r"\\\1", text)
    return re.sub(r"^(\d+)\.|^#", lambda m: f"{m.group(1)}\\." if m.group(1) else "\\#", text) if start else text


def _table(lines: list[str]) -> list[str]:
    """A :func:`search.results.report.format_table` block (header, dashes, rows) as a Markdown table; columns are
    where the dashes line's runs are."""
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]

    def cells(line: str) -> list[str]:
        ends = [s for s, _ in spans[1:]] + [len(line)]
        return [_escape(line[start:end].strip(), start=False) or " " for (start, _), end in zip(spans, ends)]

    rows = [cells(lines[0]), ["---"] * len(spans)] + [cells(line) for line in lines[2:]]
    return ["| " + " | ".join(row) + " |" for row in rows]


def to_markdown(text: str) -> list[str]:
    """``compare``'s text as Markdown lines: tables (a line, then one of dashes, up to a blank line) as
    Markdown tables, indented lines as list items, other lines as paragraphs; all text escaped."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.fullmatch(r"-+(  -+)*", lines[i + 1]):
            end = next((j for j in range(i + 2, len(lines)) if not lines[j].strip()), len(lines))
            out += ["", *_table(lines[i:end]), ""]
            i = end
            continue
        if line.startswith("  "):
            if out and out[-1] and not out[-1].startswith("- "):
                out.append("")
            out.append(f"- {_escape(line.strip())}")
        elif line.strip():
            out += ["", _escape(line)]
        i += 1
    return out


def _markdown(name: str, compare: str, figure: str | None, axis: tuple[str, str, str | None] | None = None) -> str:
    """The note: ``compare``'s text as Markdown (:func:`to_markdown`), then the figure; then, for a study of
    a batch-size axis, the axis's own table and figure (``axis``: its name, text and figure URL)."""
    body = [f"## Verdict of {name}", *to_markdown(compare)]
    if figure:
        body += ["", f"![test accuracy per arm]({figure})"]
    if axis is not None:
        axis_name, text, axis_figure = axis
        body += ["", f"## Batch-size axis of {axis_name}", *to_markdown(text)]
        if axis_figure:
            body += ["", f"![test accuracy against batch size]({axis_figure})"]
    return "\n".join(body)


def mark_outdated(storage: Any, name: str) -> int:
    """Mark every arm's verdict note of ``name`` outdated (a run is about to change the arms); returns how many.

    The note's title and first line say so and keep the old verdict below (no figure); the user attr
    ``verdict`` starts with ``outdated: ``. :func:`publish_verdict` replaces both.
    """
    from optuna_dashboard import save_note

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    marked = 0
    for _arm, study in load_arms(storage, name):
        text = study.user_attrs.get(VERDICT_ATTR)
        if not isinstance(text, str) or text.startswith(OUTDATED):
            continue
        why = (f"a run started {when} changes the arms (more trials or evaluation runs); this note is rewritten "
               f"when every final evaluation is done; the current numbers: lars-search compare {name}")  # fmt: skip
        study.set_user_attr(VERDICT_ATTR, f"{OUTDATED}{why}\n{text}")
        body = [f"## Verdict of {name}: outdated", "", f"**Outdated**: {_escape(why)}.", "",
                "The outdated verdict:", *to_markdown(text)]  # fmt: skip
        save_note(study, "\n".join(body))
        marked += 1
    return marked


def publish_verdict(
    storage: Any, name: str, *, figure_dir: str | None = None, axis: tuple[str, str, str | None] | None = None
) -> Verdict:
    """Store the verdict on every arm's study: user attr ``verdict`` (its lines) and a dashboard note.

    The note is Markdown (optuna-dashboard's ``save_note``) holding the compare table and
    the verdict. For a SQLite storage ``x.db`` the plot of :func:`search.results.plot.plot_compare`
    is uploaded as a study artifact to ``x.db-artifacts/`` (``figure_dir`` overrides) and
    shown in the note; ``lars-search dashboard`` serves that artifact store. ``axis``: the
    name, text and figure file of the batch-size axis this study belongs to (:func:`publish_axis`).
    """
    from optuna_dashboard import save_note

    verdict = load_verdict(storage, name)
    compare = format_compare(storage, name, verdict)
    text = "\n".join(format_verdict(verdict))
    store = artifact_store_for(storage, figure_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = _draw_figure(storage, name, tmp) if store is not None else None
        for _arm, study in load_arms(storage, name):
            figure = _upload_figure(study, store, path) if path is not None else None
            shown = None
            if axis is not None:
                axis_figure = axis[2] and store is not None and _upload_figure(study, store, axis[2])
                shown = (axis[0], axis[1], axis_figure or None)
            study.set_user_attr(VERDICT_ATTR, text)
            save_note(study, _markdown(name, compare, figure, shown))
    return verdict


def publish_axis(storage: Any, result: Any, *, figure_dir: str | None = None) -> int:
    """Rewrite the note of every arm of every batch of an axis (``result``: :func:`search.results.axis_report.load_axis`)
    with the axis table and figure below its own verdict; returns how many batch studies it wrote. ``run``
    calls it when every batch's final evaluation is done."""
    name, axis = result.name, result.axis
    text = format_axis(result)
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}-axis.png")
        plot_axis(result, path)
        for batch in axis.batch_sizes:
            try:
                publish_verdict(storage, axis_name(name, batch), figure_dir=figure_dir, axis=(name, text, path))
            except StudyNotFoundError:
                continue
            written += 1
    return written


def artifact_store_for(storage: Any, directory: str | None = None, *, create: bool = True) -> Any:
    """An Optuna ``FileSystemArtifactStore`` beside a SQLite storage (``<file>-artifacts``), else None.

    ``create=False`` (readers such as the dashboard): None when the directory does not exist.
    """
    if directory is None:
        backend = rdb_backend(storage) if not isinstance(storage, str) else None
        url = storage if isinstance(storage, str) else getattr(backend, "url", "")
        path = sqlite_file(url) if url else None
        if path is None:
            return None
        directory = f"{path}-artifacts"
    if not create and not os.path.isdir(directory):
        return None
    os.makedirs(directory, exist_ok=True)
    return FileSystemArtifactStore(directory)


def _draw_figure(storage: Any, name: str, directory: str) -> str | None:
    """The compare plot (:func:`search.results.plot.plot_compare`) as a PNG in ``directory``, or None without matplotlib."""
    path = os.path.join(directory, f"{name}-verdict.png")
    try:
        plot_compare(storage, name, path)
    except PlotError:
        return None
    return path


def _upload_figure(study: optuna.Study, store: Any, path: str) -> str:
    """Upload the figure as an artifact of ``study``; its URL on the dashboard."""
    artifact_id = upload_artifact(artifact_store=store, file_path=path, study_or_trial=study, mimetype="image/png")
    return f"/artifacts/{study_id_of(study)}/{artifact_id}"
