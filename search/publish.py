"""The verdict where users look: a study user attr and an optuna-dashboard note on each arm's study.

:func:`publish_verdict` stores, on every arm's search study (``<name>/<arm>``):

* the user attr ``verdict``: the verdict lines, ranking and warnings as plain text
  (:func:`search.report.format_verdict`), readable with ``study.user_attrs["verdict"]``;
* an optuna-dashboard note (``optuna_dashboard.save_note``, Markdown): the verdict, the
  compare table and, for a SQLite storage ``x.db``, the plot of
  :func:`search.plot.plot_compare` uploaded as a study artifact to ``x.db-artifacts/``
  (Optuna's ``FileSystemArtifactStore``), which ``lars-search dashboard`` serves, so the
  figure renders inside the note.

``run`` calls it when every final evaluation is done; ``compare`` and the dashboard only read.
"""

from __future__ import annotations

import tempfile
from typing import Any

import optuna

from search.optuna_internals import study_id_of
from search.report import format_compare, format_verdict
from search.results import Verdict, load_arms, load_verdict

__all__ = ["publish_verdict", "artifact_store_for"]


def _markdown(name: str, compare: str, figure: str | None) -> str:
    """The note: ``compare``'s text (the table, then the verdict, ranking and warnings), then the figure."""
    body = [f"## Verdict of {name}", "", "```", compare, "```"]
    if figure:
        body += ["", f"![test accuracy per arm]({figure})"]
    return "\n".join(body)


def publish_verdict(storage: Any, name: str, *, figure_dir: str | None = None) -> Verdict:
    """Store the verdict on every arm's study: user attr ``verdict`` (its lines) and a dashboard note.

    The note is Markdown (optuna-dashboard's ``save_note``) holding the compare table and
    the verdict. For a SQLite storage ``x.db`` the plot of :func:`search.plot.plot_compare`
    is uploaded as a study artifact to ``x.db-artifacts/`` (``figure_dir`` overrides) and
    shown in the note; ``lars-search dashboard`` serves that artifact store.
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
            study.set_user_attr("verdict", text)
            save_note(study, _markdown(name, compare, figure))
    return verdict


def artifact_store_for(storage: Any, directory: str | None = None, *, create: bool = True) -> Any:
    """An Optuna ``FileSystemArtifactStore`` beside a SQLite storage (``<file>-artifacts``), else None.

    ``create=False`` (readers such as the dashboard): None when the directory does not exist.
    """
    import os

    from optuna.artifacts import FileSystemArtifactStore

    if directory is None:
        from search.optuna_internals import rdb_backend
        from search.storage import sqlite_file

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
    """The compare plot (:func:`search.plot.plot_compare`) as a PNG in ``directory``, or None without matplotlib."""
    import os

    from search.plot import PlotError, plot_compare

    path = os.path.join(directory, f"{name}-verdict.png")
    try:
        plot_compare(storage, name, path)
    except PlotError:
        return None
    return path


def _upload_figure(study: optuna.Study, store: Any, path: str) -> str:
    """Upload the figure as an artifact of ``study``; its URL on the dashboard."""
    from optuna.artifacts import upload_artifact

    artifact_id = upload_artifact(artifact_store=store, file_path=path, study_or_trial=study, mimetype="image/png")
    return f"/artifacts/{study_id_of(study)}/{artifact_id}"
