"""Build the API reference with pdoc, and check it: no pdoc warning, no unresolved reference.

    python docs/apidoc.py [-o DIR]    # write the HTML to DIR (default docs/api)
    python docs/apidoc.py --check     # build into a temporary folder; exit 1 on any problem

A reference is a backticked dotted name in a docstring (`nnsmt.validate.Counterexample`,
`Outcome.witness`): pdoc links it when it names something documented, and leaves it as plain
code otherwise, silently. The check reads the rendered pages and lists every such name that
pdoc could not link, with the page it is on.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the pages of the reference: the API and the modules defining what it takes and returns
MODULES = ["nnsmt", "nnsmt.api", "nnsmt.ir", "nnsmt.errors", "nnsmt.query", "nnsmt.result",
           "nnsmt.terms", "nnsmt.vnnlib", "nnsmt.vnnlib2", "nnsmt.assignment", "nnsmt.floatsem",
           "nnsmt.validate", "nnsmt.interpret", "nnsmt.certificate", "nnsmt.recheck",
           "nnsmt.queries.verify", "nnsmt.queries.stability", "nnsmt.queries.compress", "nnsmt.bounds",
           "nnsmt.attack", "nnsmt.encode", "nnsmt.engine", "nnsmt.frontends", "nnsmt.backends"]

# the API pages: every reference on them must link to a page of the reference
STRICT = ("nnsmt.html", "nnsmt/api.html")

# <code>name</code> that pdoc did not turn into a link; names of nnsmt and the public API
_CODE = re.compile(r"<code>([^<>]*)</code>")
_IDENT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(\(\))?")


def _public_names() -> set[str]:
    import nnsmt
    return set(nnsmt.__all__)


def exists(name: str) -> bool:
    """Whether a dotted name (`nnsmt.x.Y.z`, or `Outcome.status` after a public name of
    `nnsmt`) names a module, an object, or a field of a dataclass."""
    import importlib
    import nnsmt
    parts = name.removesuffix("()").split(".")
    if parts[0] != "nnsmt":
        parts = ["nnsmt"] + parts
    obj, i = None, len(parts)
    while i > 0:  # the longest prefix that is a module
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except Exception:  # not a module (or one that fails to import: then not found)
            i -= 1
    for part in parts[i:]:
        fields = getattr(obj, "__dataclass_fields__", {})
        if part in fields:
            obj = fields[part]
            continue
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return obj is not None


def unresolved(out: Path, strict: tuple[str, ...] = STRICT) -> list[str]:
    """The backticked dotted names pdoc left unlinked that name nothing, and on the `strict`
    pages (the API itself) every one it left unlinked, as "page: reference"."""
    roots = {"nnsmt"} | _public_names()
    problems = []
    for page in sorted(out.rglob("*.html")):
        rel = page.relative_to(out).as_posix()
        text = page.read_text()
        for m in _CODE.finditer(text):
            name = html.unescape(m.group(1))
            if not (_IDENT.fullmatch(name) and name.split(".")[0] in roots):
                continue
            if not exists(name):
                problems.append(f"{rel}: `{name}` names nothing")
            elif rel in strict:
                problems.append(f"{rel}: `{name}` is not in the reference (document it, "
                                "or name what the reference documents)")
    return sorted(set(problems))


def build(out: Path, modules=MODULES, strict: tuple[str, ...] = STRICT) -> list[str]:
    """Render `modules` into `out`; the problems found (pdoc warnings, unresolved references)."""
    import pdoc
    import pdoc.render
    pdoc.render.configure(docformat="google", show_source=False,
                          footer_text="nnsmt API reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out)
    # every pdoc warning (import failures, annotations it cannot read, bad docstring markup);
    # deprecation notices of libraries the modules import are not the reference's problems
    problems = [f"pdoc warning: {str(w.message).splitlines()[0]}" for w in caught
                if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))
                or "pdoc" in str(w.filename)]
    return problems + unresolved(out, strict)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "api")
    ap.add_argument("--check", action="store_true", help="build into a temporary folder; "
                    "exit 1 on any pdoc warning or unresolved reference")
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            problems = build(Path(tmp))
    else:
        problems = build(args.output)
    for p in problems:
        print(p, file=sys.stderr)
    if not args.check:
        print(f"API reference: {args.output / 'index.html'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
