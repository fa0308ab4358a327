"""Storage URLs: which one a command uses, the SQLite file behind it, and how it is shown.

One rule for each, used by every verb: ``--storage``, else the study file's ``storage``,
else ``$LARS_SEARCH_STORAGE``, else ``sqlite:///lars-search.db`` (:func:`resolve_storage_url`);
the file of a SQLite URL, or None for a server (:func:`sqlite_file`); a URL or error text
with its password masked (:func:`mask_url`, :func:`one_line`).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from search.errors import StorageError

__all__ = [
    "DEFAULT_STORAGE_URL",
    "default_storage_url",
    "resolve_storage_url",
    "sqlite_file",
    "mask_url",
    "mask_text",
    "one_line",
    "normalise",
]


DEFAULT_STORAGE_URL = "sqlite:///lars-search.db"

_SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")


def default_storage_url() -> str:
    """``$LARS_SEARCH_STORAGE`` if set, else ``sqlite:///lars-search.db`` (in the cwd)."""
    return os.environ.get("LARS_SEARCH_STORAGE") or DEFAULT_STORAGE_URL


def resolve_storage_url(flag: str | None, spec: Any = None) -> str:
    """``--storage`` flag, else the study file's ``storage``, else :func:`default_storage_url`."""
    return flag or getattr(spec, "storage", None) or default_storage_url()


def _is_in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file::memory:") or "mode=memory" in database


def sqlite_file(url: str) -> str | None:
    """The absolute path of a ``sqlite:///PATH`` URL's file; None for other databases.

    Raises:
        StorageError: the URL is malformed, or names an in-memory SQLite database.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if _is_in_memory(parsed.database):
        raise StorageError(
            f"storage URL {mask_url(url)!r} is an in-memory SQLite database, which workers cannot share and "
            "a rerun cannot resume; use a file, e.g. sqlite:///lars-search.db"
        )
    database = parsed.database
    if database.startswith("file:"):  # SQLite URI filename (uri=true)
        database = urllib.parse.unquote(database[len("file:") :].split("?", 1)[0])
    return os.path.abspath(database)


_USERINFO = re.compile(r"(?P<head>://[^/@:\s]*):(?P<password>[^@/\s]*)@")

_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|passwd|pwd)=)[^&\s]*", re.IGNORECASE)


def mask_url(url: str | None) -> str:
    """``url`` with the password (userinfo or ``?password=``) replaced by ``***``.

    >>> mask_url("postgresql+psycopg://lars:s3cret@db:5432/lars?sslmode=require")
    'postgresql+psycopg://lars:***@db:5432/lars?sslmode=require'
    """
    if url is None:
        return "None"
    masked = _USERINFO.sub(lambda m: f"{m['head']}:***@", str(url))
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", masked)


def mask_text(text: str, *urls: str | None) -> str:
    """``text`` (e.g. a study file) with every URL password masked, and each of ``urls``' passwords
    removed wherever it appears: what may be stored or shown, since a storage is readable by
    whoever reads the database or its dashboard.

    >>> mask_text("storage: postgresql+psycopg://lars:s3cret@db/lars", "postgresql+psycopg://lars:s3cret@db/lars")
    'storage: postgresql+psycopg://lars:***@db/lars'
    """
    for url in urls:
        if url:
            text = _scrub(text, url)
    return mask_url(text)


def _scrub(text: str, url: str) -> str:
    """Remove every occurrence of ``url``'s password from ``text`` (error messages)."""
    try:
        password = make_url(url).password
    except Exception:  # malformed URL: fall back to the regex mask
        password = None
    if password:
        text = text.replace(str(password), "***")
    return mask_url(text)


def one_line(error: BaseException, url: str) -> str:
    """The first useful line of the innermost database error, ``url``'s password removed."""
    inner: BaseException = error
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    text = lines[0] if lines else type(inner).__name__
    # psycopg puts the useful part ("password authentication failed ...") after FATAL:
    for ln in lines:
        if "FATAL" in ln or "failed" in ln.lower():
            text = ln
            break
    return _scrub(text, url)


def _parse(url: str) -> sqlalchemy.engine.URL:
    try:
        return make_url(url)
    except Exception:
        raise StorageError(
            f"storage URL {mask_url(url)!r} is not a valid SQLAlchemy URL "
            "(e.g. sqlite:///lars-search.db or postgresql+psycopg://user:password@host/db)"
        ) from None


def normalise(url: str) -> tuple[str, sqlalchemy.engine.URL]:
    """Parse ``url``; map ``postgres://`` and a bare ``postgresql://`` to an installed driver."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
        backend = "postgresql"
    if backend not in _SUPPORTED_BACKENDS:
        raise StorageError(
            f"storage URL {mask_url(url)!r}: backend {backend!r} is not supported; "
            f"use one of {', '.join(_SUPPORTED_BACKENDS)}"
        )
    if backend == "sqlite":
        sqlite_file(url)  # rejects in-memory databases
    if parsed.drivername == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        parsed.get_dialect().import_dbapi()
    except Exception:
        extra = " (pip install 'lars-search[postgres]')" if backend == "postgresql" else ""
        raise StorageError(
            f"storage URL {mask_url(url)!r}: the database driver for {parsed.drivername!r} is not installed{extra}"
        ) from None
    return parsed.render_as_string(hide_password=False), parsed
