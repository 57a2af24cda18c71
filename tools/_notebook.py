"""What every ``tools/make_*_notebook.py`` shares: its cells in order, stable cell ids, and executing
the notebook in ``notebooks/`` and writing it there with its outputs.

A script builds its study with ``md(...)`` and ``code(...)`` calls on a :class:`Study`; the test
suite compares the stored notebook's cells with ``build()`` so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


class Study:
    """The cells of one notebook, ``notebooks/<name>``, in the order they were added."""

    def __init__(self, name: str) -> None:
        self.path = NOTEBOOKS / name
        self.cells: list[nbf.NotebookNode] = []

    def md(self, source: str) -> None:
        """Append a markdown cell."""
        self.cells.append(nbf.v4.new_markdown_cell(source.strip()))

    def code(self, source: str) -> None:
        """Append a code cell."""
        self.cells.append(nbf.v4.new_code_cell(source.strip()))

    def build(self) -> nbf.NotebookNode:
        """The notebook (cells only, not executed), with stable cell ids so that a rerun diffs cleanly."""
        for i, cell in enumerate(self.cells):
            cell.id = f"cell-{i:02d}"
        return nbf.v4.new_notebook(cells=self.cells, metadata=_KERNEL)

    def write(self) -> None:
        """Execute the notebook in notebooks/ and write it with its outputs (no timing metadata)."""
        import nbclient

        nb = self.build()
        nbclient.NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(self.path.parent)}},
        ).execute()
        nbf.write(nb, self.path)
