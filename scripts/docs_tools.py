"""Generate the reference pages of the docs site and check the docs against the code.

Generated (never edited by hand; ``tests/test_docs.py`` fails when they are stale):

- ``docs/cli.md``: every ``neurofem`` command, flag and argument, from the argparse parser
  (``coupling.cli.build_parser``);
- ``docs/config.md``: every table and key of a run config, from the pydantic schema
  (``coupling.config.run_schema``: the ``model = "network"`` and ``model = "clif"`` runs,
  with ``[mesh]``/``[problem]`` of ``fem.config``) and the mesh option table
  (``meshes.registry``);
- ``docs/api/<package>.md``: mkdocstrings ``:::`` blocks for the public names of meshes,
  fem, spiking, coupling and validation, each pointed at the module that defines it (the
  packages load their names lazily, so a static reader would not find them there).

Checks used by the tests: :func:`command_problems` (every ``neurofem ...`` command and
``--flag`` in a text exists in the parser), :func:`undocumented_flags` (every flag of the
parser is mentioned somewhere), :func:`config_key_problems` (every dotted config key
exists in the schema).

    .venv/bin/python scripts/docs_tools.py          # rewrite the generated pages
    .venv/bin/python scripts/docs_tools.py --check  # exit 1 if any is stale
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
from pathlib import Path

# the config reference and key checks live beside this file (scripts/ is not a package)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_config import CODE_SPAN, GENERATED, config_markdown  # noqa: E402
from docs_keys import config_key_problems, key_exists, reference_keys  # noqa: E402

__all__ = ["config_key_problems", "key_exists", "reference_keys"]  # the checks tests call

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("meshes", "fem", "spiking", "coupling", "validation")


def _clean(text: str) -> str:
    """Paths of this checkout made relative (the pages must not depend on where it lives)."""
    return str(text).replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")


# --------------------------------------------------------------------------- the CLI


def build_parser() -> argparse.ArgumentParser:
    """The real `neurofem` parser."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from coupling.cli import build_parser as build

    return build()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _sub_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def walk_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser, one-line help) of every command and nested subcommand, depth first."""
    helps = _sub_help(parser)
    for name, sub in _subparsers(parser).items():
        yield (*path, name), sub, helps.get(name, "")
        yield from walk_commands(sub, (*path, name))


def parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option string of `parser` and of all its subcommands (not --help)."""
    flags = {s for a in parser._actions for s in a.option_strings
             if s.startswith("--") and s != "--help"}
    for _, sub, _ in walk_commands(parser):
        flags |= {s for a in sub._actions for s in a.option_strings
                  if s.startswith("--") and s != "--help"}
    return flags


def _md(text: str) -> str:
    """Help text as Markdown on one line: | escaped everywhere (table cells), [ ] < escaped
    outside code spans (no accidental links or HTML tags)."""
    text = " ".join(_clean(text).split()).replace("|", "\\|")
    parts = re.split(r"(`+[^`]+?`+)", text)
    for i in range(0, len(parts), 2):
        parts[i] = (parts[i].replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;"))
    return "".join(parts)


def _arg_row(action: argparse.Action) -> str:
    if action.option_strings:
        name = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs == 0:
            value = "(switch)"
        else:
            metavar = action.metavar or action.dest.upper()
            value = f"`{metavar}`" + (" ..." if action.nargs in ("+", "*") else "")
            if action.choices and not action.metavar:
                value = " \\| ".join(f"`{c}`" for c in action.choices)
            if action.nargs == "?":
                value += " (optional)"
    else:
        name, value = f"`{action.metavar or action.dest}`", "(positional)"
    help_ = _md(action.help or "")
    extra = []
    if action.required and action.option_strings:
        extra.append("required")
    if action.option_strings and action.nargs != 0 and action.default not in (None, [], "") \
            and "default" not in help_:
        extra.append(f"default `{_clean(action.default)}`")
    if getattr(action, "action", None) == "append" or isinstance(action, argparse._AppendAction):
        extra.append("repeatable")
    if extra:
        help_ += f" ({'; '.join(extra)})"
    return f"| {name} | {value} | {help_} |"


def _command_section(path: tuple[str, ...], parser: argparse.ArgumentParser,
                     help_: str) -> list[str]:
    usage = _clean(parser.format_usage().strip().removeprefix("usage: "))
    out = [f"{'#' * min(len(path) + 1, 4)} `neurofem {' '.join(path)}`", ""]
    help_ = _md(help_)
    if help_:
        out += [help_[0].upper() + help_[1:].rstrip(".") + ".", ""]
    desc = _md(parser.description or "")
    if desc.lower().startswith(help_.rstrip(".").lower()):
        desc = desc[len(help_.rstrip(".")):].lstrip(". ")
    if desc:
        out += [desc[0].upper() + desc[1:], ""]
    out += ["```text", usage, "```", ""]
    actions = [a for a in parser._actions
               if "--help" not in a.option_strings
               and not isinstance(a, argparse._SubParsersAction)]
    if actions:
        out += ["| argument | value | meaning |", "|---|---|---|"]
        out += [_arg_row(a) for a in actions]
        out.append("")
    subs = _sub_help(parser)
    if subs:
        out += ["| subcommand | what |", "|---|---|"]
        out += [f"| `neurofem {' '.join((*path, n))}` | {_md(h)} |" for n, h in subs.items()]
        out.append("")
    return out


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The CLI reference page: every command, its usage, every argument and flag."""
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # usage lines wrapped the same on every terminal
    try:
        return _cli_markdown(parser or build_parser())
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns


def _cli_markdown(parser: argparse.ArgumentParser) -> str:
    out = [GENERATED, "", "# Command-line reference", "",
           "Every `neurofem` command, flag and argument, generated from the parser itself "
           "(`coupling.cli.build_parser`). `neurofem COMMAND --help` prints the same. Errors in "
           "arguments or configs end with one line `neurofem: error: ...` and exit code 2; "
           "the exit codes are listed in the [user guide](guide.md#exit-codes).", "",
           "| command | what |", "|---|---|"]
    for path, _, help_ in walk_commands(parser):
        if len(path) == 1:
            out.append(f"| [`neurofem {path[0]}`](#neurofem-{path[0]}) | {_md(help_)} |")
    out.append("")
    for path, sub, help_ in walk_commands(parser):
        out += _command_section(path, sub, help_)
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- checks of doc text

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_OTHER_PROGRAMS = ("python", "pip", "pytest", "mkdocs", "make", "git", "ruff", "uptime",
                   "OMP_NUM_THREADS", "bash", "sh", "lint-imports", "chromium", "apt-get",
                   "scripts/", "benchmarks/", "examples/", "cd ")


def _snippets(text: str) -> list[str]:
    """Inline code spans and the lines of fenced code blocks: where commands are written."""
    found = []
    for m in _FENCE.finditer(text):
        found += [ln.split("#", 1)[0] if ln.lstrip().startswith(("neurofem", ".venv", "mpiexec"))
                  or " #" in ln else ln for ln in m.group(1).splitlines()]
    rest = _FENCE.sub("", text)
    found += CODE_SPAN.findall(rest)
    return [s.strip() for s in found if s.strip()]


def _check_command(tokens: list[str], parser: argparse.ArgumentParser, where: str) -> list[str]:
    """Problems of one `neurofem ...` invocation (tokens after the program name)."""
    problems, cur, path = [], parser, []
    for tok in tokens:
        subs = _subparsers(cur)
        if not subs or tok.startswith(("-", "[", "{", "<", "(")):
            break
        if tok in subs:
            cur, path = subs[tok], [*path, tok]
        elif tok.isupper() or tok in ("...",):  # a placeholder (KIND, COMMAND): any of them
            break
        else:
            problems.append(f"{where}: `neurofem {' '.join([*path, tok])}`: no such command")
            return problems
    subs = _subparsers(cur)
    # a placeholder below this level (e.g. `neurofem mesh KIND --size`): any subcommand
    allowed = parser_flags(cur) if subs else {s for a in cur._actions for s in a.option_strings}
    for flag in _FLAG.findall(" ".join(tokens)):
        if flag not in allowed and flag != "--help":
            problems.append(f"{where}: `neurofem {' '.join(path)}`: unknown flag {flag}")
    return problems


def command_problems(text: str, parser: argparse.ArgumentParser, where: str = "text") -> list[str]:
    """Every `neurofem ...` command and `--flag` of `text` that the parser does not know.

    Commands are read from code spans and code blocks; a flag written alone (``--threads``)
    must belong to some command; flags in commands of other programs (pip, pytest, mkdocs,
    python -m benchmarks...) are not neurofem's and are skipped."""
    problems, every = [], parser_flags(parser) | {"--help"}
    for snippet in _snippets(text):
        tokens = snippet.replace("\\|", "|").split()
        prog = next((i for i, t in enumerate(tokens)
                     if t == "neurofem" or t.endswith("/neurofem")), None)
        if prog is not None:
            problems += _check_command(tokens[prog + 1:], parser, where)
        elif not snippet.startswith(_OTHER_PROGRAMS) and snippet.startswith("--"):
            problems += [f"{where}: unknown flag {f}" for f in _FLAG.findall(snippet)
                         if f not in every]
    return problems


def undocumented_flags(texts: list[str], parser: argparse.ArgumentParser) -> set[str]:
    """Flags of the parser that no text mentions."""
    said = set()
    for text in texts:
        said |= set(_FLAG.findall(text))
    return parser_flags(parser) - said

# --------------------------------------------------------------------- the API pages

API_TITLES = {
    "meshes": "meshes: Gmsh geometry, distributed meshes",
    "fem": "fem: problems, references, operators",
    "spiking": "spiking: neurons, networks, energy",
    "coupling": "coupling: residuals and the training loop",
    "validation": "validation: network vs FEM",
}


def _defining_module(package: str, name: str, obj) -> str:
    """The module whose source defines `name` (by its file; constants by their assignment)."""
    try:
        path = Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve()
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)
    except (TypeError, ValueError, OSError):
        pass
    pattern = re.compile(rf"^(?:{re.escape(name)}\s*[:=]|(?:def|class) {re.escape(name)}\b)", re.M)
    for path in sorted((ROOT / package).rglob("*.py")):
        if pattern.search(path.read_text(encoding="utf-8")):
            rel = path.relative_to(ROOT).with_suffix("")
            return ".".join(p for p in rel.parts if p != "__init__")
    raise LookupError(f"{package}.{name}: no defining module found")


def api_pages() -> dict[str, str]:
    """{docs/api/<package>.md: content}: one ``:::`` block per public name."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    pages = {}
    for package in PACKAGES:
        mod = importlib.import_module(package)
        out = [GENERATED, "", f"# {API_TITLES[package]}", "",
               f"The public names of `{package}` (`{package}.__all__`), each documented where "
               "it is defined; use them as `" + package + ".NAME`.", "",
               f"::: {package}", "    options:", "      members: false",
               "      show_root_heading: false", "      show_root_toc_entry: false", ""]
        for name in sorted(mod.__all__, key=lambda n: (n[0].islower(), n.lower())):
            where = _defining_module(package, name, getattr(mod, name))
            out += [f"## `{package}.{name}`", "", f"::: {where}.{name}", "    options:",
                    "      show_root_heading: false", "      show_root_toc_entry: false", ""]
        pages[f"api/{package}.md"] = "\n".join(out).rstrip() + "\n"
    return pages


# ------------------------------------------------------------------------ main


def generated_pages() -> dict[str, str]:
    """{path under docs/: content} of every generated page."""
    return {"cli.md": cli_markdown(), "config.md": config_markdown(), **api_pages()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    args = ap.parse_args(argv)
    stale = []
    for rel, text in generated_pages().items():
        path = DOCS / rel
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(("stale: " if args.check else "wrote: ") + ", ".join(f"docs/{s}" for s in stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
