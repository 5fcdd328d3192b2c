"""mkdocs hooks (mkdocs.yml `hooks:`): the gallery of examples, rendered at build time.

Each literate example ``examples/*.py`` becomes a page ``gallery/<name>.md``: its comment
blocks at the start of a line (``# ...``) are the prose, the rest is code. The TOML configs
``examples/*.toml`` are shown on ``gallery/configs.md`` with their header comments. Nothing
is executed: the pages are text transformations of the files, so the site builds in
seconds and never runs a mesh, a solve or a training.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _title(path: Path) -> str:
    """The first `# # Title` line of a literate example (else its file name)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return path.stem


def literate_markdown(source: str, name: str) -> str:
    """A literate Python file as Markdown: comment blocks become prose, code is fenced."""
    out, code = [], []

    def flush() -> None:
        while code and not code[-1].strip():
            code.pop()
        while code and not code[0].strip():
            code.pop(0)
        if code:
            out.extend(["", "```python", *code, "```", ""])
        code.clear()

    for line in source.splitlines():
        if line.startswith("#") and not line.startswith(("#!", "# noqa", "# type:")):
            flush()
            text = line[1:]
            out.append(text[1:] if text.startswith(" ") else text)
        else:
            code.append(line)
    flush()
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return (f"{body}\n\n---\n\nSource: `examples/{name}`. Run it as `python examples/{name}` "
            f"or under `mpiexec -n 2`; the test suite runs it too.\n")


def _toml_header(text: str) -> str:
    """The leading comment block of a TOML file, as prose."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(t for t in lines if t)


def configs_markdown() -> str:
    """Every examples/*.toml: what its header says, then the file."""
    out = ["# Example configs", "",
           "The TOML files of `examples/` (every key: the [config reference](../config.md)). "
           "Train one with `neurofem train examples/NAME.toml --out runs/NAME`; the "
           "`fem-*.toml` files are reference solves for `neurofem fem solve`.", ""]
    for path in sorted(EXAMPLES.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        out += [f"## `{path.name}`", "", _toml_header(text), "", "```toml", text.rstrip(),
                "```", ""]
    return "\n".join(out)


def index_markdown(pages: list[tuple[str, str]]) -> str:
    """The gallery's front page: one line per example."""
    out = ["# Gallery", "",
           "Literate examples: each page is the example file itself, its comments as the text "
           "(nothing here was executed to build the site; the test suite runs the examples).",
           "", "| example | what |", "|---|---|"]
    out += [f"| [`{stem}.py`]({stem}.md) | {title} |" for stem, title in pages]
    out += ["", "The run configs of the command line are collected on "
            "[Example configs](configs.md).", ""]
    return "\n".join(out)


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _nav_files(nav) -> set[str]:
    """Every page a nav (nested lists and dicts) names."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*map(_nav_files, nav.values())) if nav else set()
    if isinstance(nav, list):
        return set().union(*map(_nav_files, nav)) if nav else set()
    return set()


def _page_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def on_config(config, **kwargs):
    """Put one gallery entry per example into the nav item `Gallery`, and any page of
    docs/ that the nav does not name under `More` (a new page is reachable at once)."""
    pages = [{"Overview": "gallery/index.md"}]
    pages += [{_title(p): f"gallery/{p.stem}.md"} for p in _examples()]
    pages.append({"Example configs": "gallery/configs.md"})
    for item in config.nav or []:
        if isinstance(item, dict) and "Gallery" in item:
            item["Gallery"] = pages
    if config.nav is not None:
        docs = Path(config.docs_dir)
        named = _nav_files(config.nav)
        extra = [{_page_title(p): p.relative_to(docs).as_posix()}
                 for p in sorted(docs.rglob("*.md"))
                 if p.relative_to(docs).as_posix() not in named]
        if extra:
            config.nav.append({"More": extra})
    return config


def on_files(files: Files, config, **kwargs) -> Files:
    """Add the generated gallery pages to the site's files."""
    examples = _examples()
    for p in examples:
        content = literate_markdown(p.read_text(encoding="utf-8"), p.name)
        files.append(File.generated(config, f"gallery/{p.stem}.md", content=content))
    index = index_markdown([(p.stem, _title(p)) for p in examples])
    files.append(File.generated(config, "gallery/index.md", content=index))
    files.append(File.generated(config, "gallery/configs.md", content=configs_markdown()))
    return files


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|ref):(?=<code>)")


def on_page_content(html: str, **kwargs) -> str:
    """Docstrings are written with Sphinx roles (:class:`X`); show just the `X`."""
    return _ROLE.sub("", html).replace("::</p>", ":</p>")
