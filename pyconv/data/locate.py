"""Finding a dataset's files under a root folder, with an error that says what is missing where
and where to get it (nothing is ever downloaded)."""

from __future__ import annotations

import contextlib
import os

__all__ = ["DATA_ENV", "find_files", "official_source", "resolve_root"]

DATA_ENV = "PYCONV_DATA"


def resolve_root(data_dir, op: str) -> str:
    """``data_dir``, or ``$PYCONV_DATA`` when it is None (``~`` expanded); error if neither is
    set."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    if data_dir is None:
        raise ValueError(
            f"{op}: no data folder given: pass data_dir (the CLI's --data-dir) or set "
            f"${DATA_ENV}")
    return os.path.expanduser(os.fspath(data_dir))


def _shown(choices) -> str:
    """["a", "a.gz"] -> "a[.gz]"; other lists joined with "or"."""
    if len(choices) == 2 and choices[1] == choices[0] + ".gz":
        return choices[0] + "[.gz]"
    return " or ".join(choices)


def find_files(op: str, root, subfolders, files, source: str) -> dict:
    """The paths of ``files`` in the first folder among ``subfolders`` of ``root`` ("" is
    ``root`` itself) that holds all of them.

    ``files`` maps a name to the accepted file names, in order of preference (e.g. raw before
    ``.gz``). Returns ``{name: path}``. FileNotFoundError otherwise, listing per folder looked
    in what is there and what is missing, and where to get the files (``source``).
    """
    root = os.fspath(root)
    report = []
    for sub in subfolders:
        folder = os.path.join(root, sub) if sub else root
        if not os.path.isdir(folder):
            report.append(f"  {folder}: no such folder")
            continue
        found, missing = {}, []
        for name, choices in files.items():
            path = next((os.path.join(folder, c) for c in choices
                         if os.path.isfile(os.path.join(folder, c))), None)
            if path is None:
                missing.append(_shown(choices))
            else:
                found[name] = path
        if not missing:
            return found
        report.append(f"  {folder}: missing {', '.join(missing)}")
    wanted = ", ".join(_shown(choices) for choices in files.values())
    raise FileNotFoundError(
        f"{op}: cannot find {wanted} together in one folder. Looked in:\n" + "\n".join(report)
        + f"\npyconv does not download datasets: get the files from {source} and put them in "
          f"one of those folders.")


@contextlib.contextmanager
def official_source(source: str):
    """Within the block, a ValueError about a malformed file also says where the official files
    are (same exception type, the message extended)."""
    try:
        yield
    except ValueError as exc:
        if source in str(exc):
            raise
        raise type(exc)(f"{exc}\nThe official files: {source}") from None
