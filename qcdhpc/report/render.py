"""The report: one section per directory, chosen by the theory of what the directory holds, rendered
to markdown and HTML from the same blocks.

A family's section module (report/phi4.py, report/cl.py) provides, for the directories it claims,
`check(dir)` (ValueError naming the file when unreadable), `inputs(dir)` (the files the section
reads: the report must not overwrite them) and `blocks(dir, report_dir)`: a list of

    ("h2", text) | ("p", text) | ("list", [text, …]) | ("table", head, rows) | ("figure", path, caption)

A new family adds its module to FAMILIES: `claims(dir)` says whether a directory is its.
"""
from __future__ import annotations

import html
import importlib
from pathlib import Path

MARK = "<!-- qcdhpc report -->"  # first line of the files we write: what --out may replace
_LEGACY_MARK = "Errors: Γ-method with τ_int per chain"  # reports written before MARK existed
FAMILIES = ("phi4", "cl")


def is_report(path) -> bool:
    """Whether `path` is a report (markdown or HTML) this module wrote, so a rerun may replace it."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return False
    return MARK in head or _LEGACY_MARK in head


def html_path(out_md) -> Path:
    return Path(out_md).with_suffix(".html")


def relative(path: Path, base: Path) -> str:
    """Figure links relative to the report, so the results directory can be moved as a whole."""
    path, base = Path(path).resolve(), Path(base).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def save_figure(fig, path: Path) -> Path | None:
    """Save and close a matplotlib figure; None when the directory cannot be written (a read-only
    result directory: the report goes without this figure)."""
    import matplotlib.pyplot as plt

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except OSError:
        return None
    finally:
        plt.close(fig)
    return Path(path)


def family_of(directory):
    """The section module that claims `directory` (ValueError when none does)."""
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"{d} is not a result directory (POINT_DIR/observables.json, or a CL scan directory)")
    for name in FAMILIES:
        module = importlib.import_module(f".{name}", __package__)
        if module.claims(d):
            return module
    obs = d / "observables.json"
    if obs.is_file():
        import json

        try:
            theory = json.loads(obs.read_text(encoding="utf-8")).get("theory")
        except (OSError, ValueError, AttributeError):
            theory = None
        raise ValueError(f"{obs}: observables of theory {theory!r}; the report has sections for "
                         "phi4, cl-quartic and cl-bose scans")
    raise ValueError(f"no observables.json in {d} (run qcdhpc measure first), nor a CL scan of mu_*/observables.json")


def check(directory) -> None:
    family_of(directory).check(Path(directory))


def report_inputs(directories) -> list[Path]:
    files = []
    for d in directories:
        try:
            files += family_of(d).inputs(Path(d))
        except ValueError:
            pass  # check() says what is wrong with it
    return files


def _md(blocks) -> list[str]:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "list":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            head, rows = b[1], b[2]
            out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]
        elif kind == "figure":
            out += [f"![{b[2]}]({b[1]})", f"*{b[2]}*", ""]
    return out


def _html(blocks) -> list[str]:
    esc, out = html.escape, []
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(f"<h2>{esc(b[1])}</h2>")
        elif kind == "p":
            out.append(f"<p>{esc(b[1])}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in b[1]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in b[2]]
            out.append("</table>")
        elif kind == "figure":
            out.append(f"<figure><img src='{esc(b[1])}'><figcaption>{esc(b[2])}</figcaption></figure>")
    return out


def write_report(directories, out_md, title: str = "qcdhpc report") -> tuple[Path, Path]:
    """Write OUT.md and OUT.html for the given result directories; returns both paths."""
    from ..io.atomic import atomic_write_text

    out_md = Path(out_md)
    blocks = []
    for d in directories:
        blocks += family_of(d).blocks(Path(d), out_md.parent)
    atomic_write_text(out_md, "\n".join([MARK, f"# {title}", ""] + _md(blocks)) + "\n")
    esc = html.escape
    head = [f"<!doctype html>{MARK}<meta charset='utf-8'><title>{esc(title)}</title>",
            "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
            "img{max-width:32em;margin:4px}figure{display:inline-block}</style>", f"<h1>{esc(title)}</h1>"]
    out_html = html_path(out_md)
    atomic_write_text(out_html, "\n".join(head + _html(blocks)) + "\n")
    return out_md, out_html
