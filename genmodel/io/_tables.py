"""Writing result tables (a sweep's rows) to CSV or Parquet: the format follows the file's suffix.

Files are written whole or not at all: to a temporary file beside the target, then renamed over it.
pandas and pyarrow are imported when a table is written, not when genmodel is imported.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from genmodel._errors import SpecError

if TYPE_CHECKING:
    import pandas as pd

# the file suffixes write_table understands, and the format each one means
_SUFFIXES = MappingProxyType({".csv": "csv", ".parquet": "parquet", ".pq": "parquet"})


def _new_file_mode(target: Path) -> int:
    """The mode of a file written over ``target``: the existing file's, else a new file's (0o666 less
    the umask), not the 0o600 of the temporary file it is written to first (as
    ``genmodel.report.new_file_mode``, which io may not import).
    """
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def table_format(path: str | Path) -> str:
    """The format a table file's suffix names: ``"csv"`` (``.csv``) or ``"parquet"`` (``.parquet``, ``.pq``).

    Raises:
        SpecError: any other suffix.
    """
    kind = _SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise SpecError(
            f"output={str(path)!r}: expected a file ending in {', '.join(_SUFFIXES)} "
            "(the suffix chooses CSV or Parquet)"
        )
    return kind


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` to ``path`` as CSV (``.csv``) or Parquet (``.parquet``, ``.pq``), without its index.

    Args:
        table: the rows to write (e.g. the result of :func:`genmodel.sweep`).
        path: the file; its folder is created if missing; an existing file is replaced whole.

    Returns:
        The path written.

    Raises:
        SpecError: the suffix is neither ``.csv`` nor ``.parquet``/``.pq``.
    """
    kind = table_format(path)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        if kind == "csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False, engine="pyarrow")
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
