"""Runs every ```python block of `README.md` and `docs/*.md`, page by page.

Each page runs in its own Python subprocess (so a page that sets a
mixed-precision policy or logical devices cannot leak into another), its
blocks in order in one namespace, inside a temporary working directory.
A failure names the page, the block and its first line, and shows the
traceback with the Markdown line numbers.

A block is skipped only when it needs what this machine lacks (internet,
a TPU, a GPU): either the line before its fence is an HTML comment
`<!-- skip-test: why -->`, or its info string is `python no-test` with the
reason written next to the block.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE_TIMEOUT_S = 600

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_SKIP_COMMENT = re.compile(r"^\s*<!--\s*skip-test\b.*-->\s*$")


def extract_blocks(text):
    """Python blocks of a Markdown text as `[(first code line, code, skipped)]`.

    `first code line` is 1-based, the line after the opening fence. Blocks
    whose info string's first word is `python` or `py` count; `no-test` in
    the info string or a `<!-- skip-test ... -->` line right before the fence
    (blank lines allowed in between) marks the block skipped.
    """
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        indent = len(match.group("indent"))
        start = i + 1
        j = start
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(
                fence[0]
            ):
                break
            j += 1
        words = info.split()
        if words and words[0].lower() in ("python", "py", "python3"):
            body = [line[indent:] if line[:indent].isspace() else line for line in lines[start:j]]
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            skipped = "no-test" in words[1:] or (
                k >= 0 and bool(_SKIP_COMMENT.match(lines[k]))
            )
            blocks.append((start + 1, "\n".join(body) + "\n", skipped))
        i = j + 1
    return blocks


def _pages():
    pages = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    return [p for p in pages if p.exists()]


def _runnable_pages():
    out = []
    for page in _pages():
        blocks = extract_blocks(page.read_text(encoding="utf-8"))
        if any(not skipped for _, _, skipped in blocks):
            out.append(page)
    return out


# Executed in the subprocess: `python -c _RUNNER page.md blocks.json`.
_RUNNER = textwrap.dedent(
    """
    import json, linecache, sys, traceback
    page, blocks_file, shown = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(page, encoding="utf-8") as f:
        source = f.read()
    # Tracebacks show the page's own lines and line numbers.
    linecache.cache[page] = (len(source), None, source.splitlines(True), page)
    namespace = {"__name__": "__main__"}
    with open(blocks_file, encoding="utf-8") as f:
        blocks = json.load(f)
    for number, (line, code) in enumerate(blocks, 1):
        padded = "\\n" * (line - 1) + code
        try:
            exec(compile(padded, page, "exec"), namespace)
        except BaseException:
            kind, error, tb = sys.exc_info()
            sys.stdout.flush()
            print(
                f"\\nDOCS BLOCK FAILED: {shown}, python block {number} of "
                f"{len(blocks)} (code starts at line {line})",
                file=sys.stderr,
            )
            # Drop this runner's own frame: the trace starts in the page.
            traceback.print_exception(kind, error, tb.tb_next)
            sys.exit(1)
        print(f"docs block ok: {shown}:{line}", flush=True)
    """
)


def _subprocess_env():
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
        ),
    )
    return env


def _failure_report(stderr, n=60):
    """From the runner's failure line on (TensorFlow start-up logs dropped)."""
    marker = stderr.find("DOCS BLOCK FAILED")
    text = stderr[marker:] if marker >= 0 else stderr
    return "\n".join(text.strip().splitlines()[-n:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", _runnable_pages(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_docs_page_code_blocks_run(page, tmp_path):
    blocks = [
        (line, code)
        for line, code, skipped in extract_blocks(page.read_text(encoding="utf-8"))
        if not skipped
    ]
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps(blocks), encoding="utf-8")
    rel = str(page.relative_to(ROOT))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(page), str(blocks_file), rel],
            cwd=tmp_path,
            env=_subprocess_env(),
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        proc = None
    if proc is None:
        pytest.fail(
            f"{rel}: its code blocks did not finish in {PAGE_TIMEOUT_S} s. "
            f"Output so far (one 'docs block ok' line per finished block):\n{out}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"a code block in {rel} failed (owner of the page: please fix the "
            f"block or mark it `<!-- skip-test: reason -->` if it needs "
            f"internet/TPU)\n{_failure_report(proc.stderr)}",
            pytrace=False,
        )


def test_extract_blocks_order_lines_and_skip_markers():
    text = textwrap.dedent(
        """\
        # Title
        ```python
        a = 1
        ```
        text
        <!-- skip-test: needs internet -->

        ```python
        download()
        ```
        ```python no-test
        tpu()
        ```
        ```bash
        echo not python
        ```
        - item
          ```py
          b = a + 1
          ```
        ````python
        s = '''
        ```
        '''
        ````
        """
    )
    blocks = extract_blocks(text)
    assert [(line, skipped) for line, _, skipped in blocks] == [
        (3, False),
        (9, True),
        (12, True),
        (19, False),
        (22, False),
    ]
    assert blocks[0][1] == "a = 1\n"
    assert blocks[3][1] == "b = a + 1\n"
    assert blocks[4][1] == "s = '''\n```\n'''\n"


def test_docs_runner_reports_page_block_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n```python\nx = 1\n```\n\n```python\ny = x + 1\nraise ValueError(y)\n```\n",
        encoding="utf-8",
    )
    blocks = [(line, code) for line, code, _ in extract_blocks(page.read_text())]
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps(blocks), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(page), str(blocks_file), "page.md"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "DOCS BLOCK FAILED: page.md, python block 2 of 2" in proc.stderr
    assert "(code starts at line 7)" in proc.stderr
    # The traceback points at the page's line 8 and quotes it.
    assert f'File "{page}", line 8' in proc.stderr
    assert "raise ValueError(y)" in proc.stderr
    assert "ValueError: 2" in proc.stderr


def _links(text):
    return re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)


def test_index_links_every_page_and_links_resolve():
    docs = ROOT / "docs"
    index = docs / "index.md"
    text = index.read_text(encoding="utf-8")
    linked = {
        (docs / link).resolve()
        for link in _links(text)
        if not re.match(r"[a-z]+://", link)
    }
    missing = [
        p.name
        for p in sorted(docs.glob("*.md"))
        if p.name != "index.md" and p.resolve() not in linked
    ]
    assert not missing, f"docs/index.md does not link to: {missing}"
    for page in [index, docs / "migration.md"]:
        for link in _links(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", link):
                continue
            assert (page.parent / link).exists(), f"{page.name}: broken link {link}"
