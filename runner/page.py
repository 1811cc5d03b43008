"""A sweep folder's report page: report.md beside the plots, and report.html, self-contained
(plots embedded), for reading or sending without the folder."""
import base64
import html
import re
from pathlib import Path

from runner.result import write_text_atomic


def environment_lines(results: list[dict]) -> list[str]:
    """Where the runs ran: devices, software, concurrency, code versions."""
    def distinct(key):
        return sorted({str(r["environment"].get(key)) for r in results})

    return [f"- devices: {', '.join(distinct('device_name'))} ({', '.join(distinct('device'))})",
            f"- torch {', '.join(distinct('torch'))}, python {', '.join(distinct('python'))}",
            f"- threads per run: {', '.join(distinct('threads'))}; runs sharing a device: "
            f"{', '.join(distinct('concurrent_jobs'))}",
            f"- code: {', '.join(c[:10] for c in distinct('git_commit'))}"
            + (" (with uncommitted changes)" if "True" in distinct("git_dirty") else "")]


def warnings_for(results: list[dict], counts: dict) -> list[str]:
    """What a reader must know before comparing the numbers."""
    env = [r["environment"] for r in results]
    found = []
    for key, what in (("device_name", "devices"), ("concurrent_jobs", "numbers of runs "
                      "sharing a device"), ("threads", "thread counts")):
        values = sorted({str(e.get(key)) for e in env})
        if len(values) > 1:
            found.append(f"tokens/sec compares runs on different {what} ({', '.join(values)}): "
                         f"speed differences may come from there, not from the factor")
    if any(r["sees_future"] for r in results):
        found.append("some runs are bidirectional language models: they see the tokens they "
                     "predict, so their perplexity is not a language-model score (read their "
                     "samples)")
    if counts["failed"] or counts["diverged"]:
        found.append(f"{counts['failed']} failed and {counts['diverged']} diverged runs are "
                     f"counted, marked in the plots, and left out of every mean")
    if len({e.get("git_commit") for e in env}) > 1:
        found.append("the runs come from different code versions (environment.git_commit)")
    return found


def samples(results: list[dict], by: list[str], flat) -> list[str]:
    """One generated text per point (its lowest seed), so a reader sees what perplexity
    means, and what the bidirectional misuse produces."""
    chosen = {}
    for r in sorted(results, key=lambda r: r["config"].get("seed", 0)):
        if "sample" in r:
            config = flat(r["config"])
            chosen.setdefault(", ".join(f"{k}={config.get(k)}" for k in by) or "all",
                              r["sample"]["text"])
    return [f"- {point}: `{text}`" for point, text in chosen.items()]


def page_markdown(title: str, intro: str, tables: str, plots: list[Path], env: list[str],
                  warns: list[str], texts: list[str], findings: list[str] = ()) -> str:
    parts = [f"# {title}\n", intro + "\n"]
    if warns:
        parts.append("## Warnings\n\n" + "\n".join(f"- {w}" for w in warns) + "\n")
    parts.append("## Tables\n\n" + tables)
    if findings:
        parts.append("## The companion note's findings\n\n" + "\n\n".join(findings) + "\n")
    pngs = [p for p in plots if p.suffix == ".png"]
    if pngs:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{p.stem}]({p.name})" for p in pngs) + "\n")
    parts.append("## Environment\n\n" + "\n".join(env) + "\n")
    if texts:
        parts.append("## Samples\n\n" + "\n".join(texts) + "\n")
    return "\n".join(parts)


def to_html(markdown: str, folder: Path, title: str) -> str:
    """The page's own Markdown (headings, lists, pipe tables, images, `code`) as HTML, with
    images embedded as data URIs."""
    def inline(text):
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))

    body, table, items = [], [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells)
                             + "</tr>")
            continue
        if line.startswith("- "):
            items.append(f"<li>{inline(line[2:])}</li>")
            continue
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table = []
        if items:
            body.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if m := re.match(r"(#+) (.*)", line):
            level = len(m.group(1))
            body.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif m := re.match(r"!\[(.*)\]\((.*)\)", line):
            data = base64.b64encode((folder / m.group(2)).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(m.group(1))}" '
                        f'src="data:image/png;base64,{data}"/>')
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:"
             "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:"
             "right}img{max-width:100%}code{font-size:90%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'/><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_page(folder: Path, markdown: str, title: str) -> tuple[Path, Path]:
    md, page = folder / "report.md", folder / "report.html"
    write_text_atomic(md, markdown)
    write_text_atomic(page, to_html(markdown, folder, title))
    return md, page
