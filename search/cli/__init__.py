"""The ``lars-search`` command: parsing, the verbs, one line per user error, exit codes.

Public: ``main(argv=None) -> int``, the console script's entry point (``lars-search =
search.cli:main``; ``python -m search.cli`` runs it too), listed here so that an installed
script keeps working whatever the room holds; ``command`` (``main``, ``COMMANDS``,
``build_parser``, ``versions``).
Private: ``_verbs`` (the reading verbs ``status``, ``compare``, ``export``, ``dashboard``, and
what every verb shares), ``_run_verbs`` (the verbs that train: ``run``, ``worker``, ``train``).

The top room: it imports every other room, none imports it. A verb imports its room when it
runs, so ``lars-search --help`` loads neither Optuna nor torch.
"""

from search.cli.command import main

__all__ = ["main"]
