"""The docs are true to the code: the site builds strictly, the generated pages are current,
every command, flag and config key the docs mention exists, and the README stays a
quickstart.

Unmarked, so these run in the serial pass of `make test` (`pytest -m "not mpi"`). The
checkers live in scripts/docs_tools.py; the negative controls below plant unknown flags,
commands and keys in copies of real pages and expect the checkers to name them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
QUICKSTART = """```bash
make demo   # sets up .venv if missing, then runs the default job
make test   # sets up .venv if missing, then runs the whole suite (serial, then mpiexec -n 2)
```"""


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tools():
    return _load("docs_tools", ROOT / "scripts" / "docs_tools.py")


@pytest.fixture(scope="module")
def parser(tools):
    return tools.build_parser()


def _pages() -> dict[str, str]:
    """README.md, benchmarks/README.md (a site page too) and every page of docs/."""
    pages = {"README.md": README.read_text(encoding="utf-8"),
             "benchmarks/README.md": (ROOT / "benchmarks" / "README.md").read_text("utf-8")}
    for path in sorted(DOCS.rglob("*.md")):
        pages[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return pages


# ----------------------------------------------------------------------- the site


def test_mkdocs_strict_build(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs) passes: no warning of any kind."""
    pytest.importorskip("mkdocs", reason="mkdocs not installed: `make setup` installs the "
                        "docs extra (pip install -e .[test])")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings not installed")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                          "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    site = tmp_path / "site"
    for page in ("cli", "config", "guide", "results", "gallery/custom_pde", "api/coupling"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "coupling" / "index.html").read_text(encoding="utf-8")
    assert "coupling.fit" in api and "coupling.discretise" in api


def test_generated_reference_pages_are_current(tools):
    """docs/cli.md, docs/config.md, docs/api/*.md equal what the parser and schema give."""
    stale = [rel for rel, text in tools.generated_pages().items()
             if not (DOCS / rel).exists() or (DOCS / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"stale: {stale}; run `.venv/bin/python scripts/docs_tools.py`"


def test_results_index_is_current():
    """benchmarks/results/README.md is what benchmarks/results_index.py writes from the
    records (so no figure in it is typed by hand or drifts from its record)."""
    from benchmarks import results_index

    committed = results_index.INDEX.read_text(encoding="utf-8")
    assert committed == results_index.index_markdown(), (
        "stale: run `.venv/bin/python -m benchmarks.results_index`")


def test_results_index_copies_the_records():
    """Each record's command and machine load appear in the index as the record has them."""
    from benchmarks import results_index

    text = results_index.INDEX.read_text(encoding="utf-8")
    pareto = (results_index.RESULTS / "pareto-lshape.md").read_text(encoding="utf-8")
    assert "python -m benchmarks.pareto lshape --steps 1500" in pareto
    assert "`python -m benchmarks.pareto lshape --steps 1500`" in text
    assert "load average: 3.79, 3.16, 2.80" in pareto and "load average: 3.79, 3.16, 2.80" in text
    for md in results_index.RESULTS.glob("*.md"):
        if md.name != "README.md":
            assert f"### `{md.name}`" in text, md.name


# ------------------------------------------------------------ commands and flags


def test_documented_commands_and_flags_exist(tools, parser):
    """Every `neurofem ...` command and --flag of README.md and docs/ is in the parser."""
    problems = [p for where, text in _pages().items()
                for p in tools.command_problems(text, parser, where)]
    assert not problems, "\n".join(problems)


def test_every_flag_is_documented(tools, parser):
    """Every flag of every subcommand is mentioned somewhere in docs/ (the CLI reference
    is generated from the parser, so this holds while that page is current)."""
    texts = [t for where, t in _pages().items() if where != "README.md"]
    assert not tools.undocumented_flags(texts, parser)
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    for flag in ("--threads", "--ignore-limits", "--cache", "--config", "--runs"):
        assert f"`{flag}`" in cli, flag


def test_checker_reports_planted_unknown_flag(tools, parser, tmp_path):
    """Negative control: unknown flags, commands and keys planted in a copy of a real page
    are each reported; the unmodified page is clean."""
    page = tmp_path / "getting-started.md"
    original = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    assert tools.command_problems(original, parser, "original") == []
    page.write_text(original + "\n\nRun `neurofem train CONFIG --out DIR --no-such-flag`, then "
                    "`--frobnicate`, then `neurofem frobnicate RUN`, or:\n\n```bash\n"
                    ".venv/bin/neurofem mesh rve --volume-fractoin 0.2 -o rve.msh\n```\n"
                    "Set `training.no_such_key` or `network.thresold`.\n", encoding="utf-8")
    planted = page.read_text(encoding="utf-8")
    problems = "\n".join(tools.command_problems(planted, parser, str(page)))
    assert "unknown flag --no-such-flag" in problems
    assert "unknown flag --frobnicate" in problems
    assert "neurofem frobnicate" in problems and "no such command" in problems
    assert "unknown flag --volume-fractoin" in problems
    assert "--out" not in problems and "--volume-fraction" not in problems
    keys = "\n".join(tools.config_key_problems(planted, str(page)))
    assert "training.no_such_key" in keys and "network.thresold" in keys
    assert tools.config_key_problems(original, "original") == []
    # a flag of another program is not neurofem's business
    assert tools.command_problems("`pip install --no-deps -e .`", parser) == []
    # and an undocumented flag is noticed
    assert "--ignore-limits" in tools.undocumented_flags(["`neurofem train --out`"], parser)


# ------------------------------------------------------------------ config keys


def test_config_reference_keys_exist(tools):
    """Every key of the config reference's tables, and every dotted key any page mentions
    (`training.batch`), exists in the run-config schema; the reference covers the schema."""
    reference = (DOCS / "config.md").read_text(encoding="utf-8")
    keys = tools.reference_keys(reference)
    assert len(keys) > 80
    missing = [k for k in keys if not k.startswith("mesh.") and not tools.key_exists(k)]
    assert not missing, missing
    for name in ("training.lr", "network.threshold", "residual.kind", "boundary.lift",
                 "clif.broadcast", "parameters.held_out", "problem.bcs.type",
                 "network.hidden", "problem.materials.<name>.E"):
        assert name in keys, name
    problems = [p for where, text in _pages().items()
                for p in tools.config_key_problems(text, where)]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------- README


def test_readme_is_a_quickstart(parser, tools):
    """≤ 120 lines, opens with exactly the two commands, has the command table (every
    subcommand), the wins/losses markers once each, and nothing points outside the repo."""
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 120, len(lines)
    assert lines[0] == "# neurofem"
    assert "\n".join(lines[2:6]) == QUICKSTART
    for name in tools._subparsers(parser):
        assert re.search(rf"^\| `neurofem {name}\b", text, re.M), name
    section = text.split("## Where the spiking network wins and where it loses", 1)
    assert len(section) == 2
    for marker in ("<!-- wins-losses:start -->", "<!-- wins-losses:end -->"):
        assert text.count(marker) == 1 and marker in section[1].split("\n## ")[0]
    for where, page in _pages().items():
        assert "../shared" not in page, where
    for link in re.findall(r"\]\((?!https?:|#)([^)#]+)", text):
        assert (ROOT / link).exists(), link


def _statements(source: str) -> list[str]:
    """Code lines without comments, blank lines or alignment spaces."""
    out = []
    for line in source.splitlines():
        code = re.sub(r"\s+#.*$", "", line).rstrip()
        if code and not code.lstrip().startswith("#"):
            out.append(re.sub(r"\s+", " ", code))
    return out


def test_readme_api_example_is_custom_pde():
    """The README's Python example is examples/custom_pde.py (which the suite runs) without
    its comments, so the quickstart cannot show code that does not work."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    example = (ROOT / "examples" / "custom_pde.py").read_text(encoding="utf-8")
    assert _statements(block) == _statements(example)
    assert len(_statements(block)) <= 16


def test_gallery_renders_literate_examples():
    """Comment blocks become prose and code is fenced; every example gets a page."""
    hooks = _load("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    md = hooks.literate_markdown("# # Title\n#\n# Some *prose*.\n\nx = 1  # inline\n"
                                 "# ## Next\ny = 2\n", "demo.py")
    assert md.startswith("# Title\n")
    assert "Some *prose*." in md and "```python\nx = 1  # inline\n```" in md
    assert "## Next" in md and "```python\ny = 2\n```" in md
    examples = sorted(p.stem for p in (ROOT / "examples").glob("*.py"))
    assert "custom_pde" in examples
    index = hooks.index_markdown([(e, e) for e in examples])
    assert all(f"({e}.md)" in index for e in examples)


def test_fit_signature_is_documented_whole():
    """docs/architecture.md lists every parameter of `coupling.fit`, in order."""
    import inspect

    import coupling

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    m = re.search(r"`coupling\.fit\((net, disc, \*,[^)]*)\)`", text)
    assert m, "the coupling.fit signature is missing from docs/architecture.md"
    documented = [a.strip() for a in m.group(1).replace("\n", " ").split(",")
                  if a.strip() != "*"]
    assert documented == list(inspect.signature(coupling.fit).parameters)
