"""Builds `notebooks/*.ipynb` from the percent-format sources in `tools/notebook_sources/`.

The sources are plain Python files, one per notebook, split into cells by
`# %%` lines (`# %% [markdown]` cells hold Markdown, each line prefixed with
`# `). They are the files to edit: diffs stay readable and reviewable.
This script writes the notebooks with no outputs, `execution_count` null
and deterministic cell ids, and `tests/test_notebooks.py` fails when a
committed notebook differs from what this script builds, so the two never
drift apart.

Usage:
    python tools/make_notebooks.py          # rewrite notebooks/*.ipynb
    python tools/make_notebooks.py --check  # exit 1 if any is out of date
"""

import argparse
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "notebook_sources"
NOTEBOOKS = ROOT / "notebooks"

_CELL = re.compile(r"^# %%(?P<kind> \[markdown\])?(?P<meta>.*)$")

# Notebook-level metadata per source file: Colab reads `accelerator`.
_EXTRA_METADATA = {
    "04_tpu_and_multi_gpu": {"accelerator": "TPU"},
}


def parse_cells(text):
    """`[(kind, source)]` from a percent-format text; kind is code|markdown."""
    cells = []
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if body:
            cells.append((kind, body))

    for line in text.splitlines():
        match = _CELL.match(line)
        if match:
            flush()
            kind = "markdown" if match.group("kind") else "code"
            lines = []
            continue
        if kind is None:
            if line.strip():
                raise ValueError(
                    f"Text before the first `# %%` line: {line!r}. Every "
                    "line of a notebook source must belong to a cell."
                )
            continue
        if kind == "markdown":
            if line.strip() and not (line == "#" or line.startswith("# ")):
                raise ValueError(
                    f"Markdown cell lines must start with '# '. Received: {line!r}"
                )
            line = line[2:]
        lines.append(line)
    flush()
    return cells


def build(source_path):
    """The `nbformat` notebook for one source file, outputs stripped."""
    source_path = pathlib.Path(source_path)
    cells = []
    for i, (kind, body) in enumerate(parse_cells(source_path.read_text("utf-8"))):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        cell.id = f"cell-{i:02d}"
        cells.append(cell)
    metadata = {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    metadata.update(_EXTRA_METADATA.get(source_path.stem, {}))
    nb = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return nb


def render(source_path):
    """The exact text `notebooks/<name>.ipynb` must hold."""
    return nbformat.writes(build(source_path)) + "\n"


def sources():
    return sorted(SOURCES.glob("[0-9]*.py"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when a notebook differs from its source",
    )
    args = parser.parse_args(argv)
    stale = []
    for src in sources():
        target = NOTEBOOKS / (src.stem + ".ipynb")
        text = render(src)
        current = target.read_text("utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date (run python tools/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
