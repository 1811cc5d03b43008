"""A sweep folder's report page: report.md beside the plots, and report.html, self-contained
(plots embedded), for reading or sending without the folder."""
import base64
import html
import mimetypes
import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote, unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from runner.report.runs import ABSURD, implemented, order
from runner.result import flatten, version_label, write_text_atomic

# A CPU run whose process used fewer than this share of its threads' CPU time over training
# was waiting for cores: alone, torch's OpenMP threads keep it near 1.0 even for tiny models;
# with 2 busy loops on 2 cores a 2-thread run fell to 0.49, and its tokens/sec to 1/3.7.
MIN_UTILISATION = 0.75
NAMED = 5  # runs named in one warning; the rest are counted
# CommonMark plus pipe tables; raw HTML off: a "<" in a cell or a run's name is text.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:"
          "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:"
          "right}img{max-width:100%}code{font-size:90%}")


# What starts Markdown markup inside a line: backslash, code, emphasis, link or image brackets,
# autolinks, table cells, an entity reference; and an "_" not inside a word (inside one, as in
# model.num_hiddens, it never does).
_MARKUP = re.compile(r"[\\`*\[\]<|]|&(?=#?\w+;)|(?<!\w)_|_(?!\w)")


def escape(text) -> str:
    """`text` (a run's folder, a device's name, a config value) as Markdown that reads as the
    text itself within a line or a table cell: each character that would start markup gets a
    backslash; plain names come out unchanged."""
    return _MARKUP.sub(r"\\\g<0>", str(text))


def code_span(text: str) -> str:
    """`text` as one Markdown code span, whatever backticks or line breaks it holds: the fence
    is one backtick longer than its longest run of them, and line breaks (which a code span
    shows as spaces anyway) become spaces, so that no line of it can start a block."""
    text = re.sub(r"\r\n|\r|\n", " ", text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    # CommonMark strips one space from each end when both ends have one: pad to keep them, and
    # to keep a backtick at an end apart from the fence
    pad = " " if text.strip(" ") and ("`" in (text[0], text[-1]) or
                                      text[0] == text[-1] == " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else "` `"


def _distinct(values) -> list[str]:
    """The distinct values, escaped, in value order: threads 2, 4, 16 (never 16, 2, 4)."""
    return [escape(v) for v in sorted(set(values), key=order)]


def _by_point(results: list[dict], by: list[str]) -> list[dict]:
    """The results by their point's values (model.num_hiddens 32, 128, 256, 1024, not the text
    order of their folders' names), then seed, then folder name."""
    def key(r):
        config = {"task": r.get("task"), **flatten(r["config"])}
        return ([order(config.get(k)) for k in by], order(config.get("seed")), name(r))
    return sorted(results, key=key)


def _versions(results: list[dict]) -> str:
    tally = Counter(escape(version_label(r["environment"])) for r in results)
    return ", ".join(f"{v} ({n} run{'s' * (n != 1)})" for v, n in sorted(tally.items()))


def _named(runs: list[str]) -> str:
    more = f" and {len(runs) - NAMED} more" if len(runs) > NAMED else ""
    return ", ".join(runs[:NAMED]) + more


def name(result: dict) -> str:
    """A run as a reader finds it: its folder in the report's, else (the folder itself) its id."""
    return result["_path"] if result.get("_path", ".") != "." else result["run_id"]


def oversubscribed(result: dict) -> str | None:
    """What shows that `result`'s machine had more work than cores while it trained ("load 5.1
    on 2 cores", "utilisation 0.49 of its 2 threads"), or None; missing fields show nothing."""
    env, metrics = result["environment"], result["metrics"]
    found = []
    cores = env.get("cpu_count")
    load = max((x for x in (env.get("load_avg_start"), env.get("load_avg_end"))
                if x is not None), default=None)
    if cores and load is not None and load > cores:
        found.append(f"load {load:.1f} on {cores} cores")
    cpu, wall, threads = (metrics.get("train_cpu_seconds"), metrics.get("train_seconds"),
                          env.get("threads"))
    if env.get("device") == "cpu" and cpu is not None and wall and threads:
        share = cpu / wall / threads
        if share < MIN_UTILISATION:
            found.append(f"utilisation {share:.2f} of its {threads} threads")
    return ", ".join(found) or None


def _impls(results: list[dict]) -> str:
    """Which implementation computed the runs' rnn, lstm and gru cells, and how many runs each."""
    found = Counter(impl for r in results if (impl := implemented(
        {"model.cell": flatten(r["config"]).get("model.cell")}, r["environment"]).get(
        "model.impl")))
    names = {"nn": "torch.nn's layers", "fused": "fused layers, models/fused.py"}
    return "; ".join(f"{names[k]} ({n} runs)" for k, n in sorted(found.items()))


def environment_lines(results: list[dict]) -> list[str]:
    """Where the runs ran: devices, software, concurrency, code versions."""
    def distinct(key):
        return _distinct(r["environment"].get(key) for r in results)

    return [f"- devices: {', '.join(distinct('device_name'))} ({', '.join(distinct('device'))})",
            f"- torch {', '.join(distinct('torch'))}, python {', '.join(distinct('python'))}",
            f"- threads per run: {', '.join(distinct('threads'))}; runs sharing a device: "
            f"{', '.join(distinct('concurrent_jobs'))}",
            *([f"- rnn, lstm and gru cells computed by (model.impl): {impls}"]
              if (impls := _impls(results)) else []),
            f"- code: {_versions(results)}"]


def warnings_for(results: list[dict], counts: dict, by: list[str] = ()) -> list[str]:
    """What a reader must know before comparing the numbers. Runs it names come in the order
    of their points' values (`by`, the swept keys), then seed."""
    env = [r["environment"] for r in results]
    found = []
    for key, what in (("device_name", "devices"), ("concurrent_jobs", "numbers of runs "
                      "sharing a device"), ("threads", "thread counts")):
        values = _distinct(e.get(key) for e in env)
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
    busy = [f"{escape(name(r))} ({why})" for r in _by_point(results, by)
            if r["metrics"].get("tokens_per_sec") and (why := oversubscribed(r))]
    if busy:
        found.append(f"{len(busy)} run(s) measured tokens/sec on an oversubscribed machine, "
                     f"so their tokens/sec is not a speed figure: {_named(busy)}")
    if len({version_label(e) for e in env}) > 1:
        found.append(f"the runs come from different code versions: {_versions(results)}; a "
                     f"difference between points may come from the code")
    tasks = Counter(r["task"] for r in results if "task" in r)
    if len(tasks) > 1:
        mix = ", ".join(f"{n} {escape(task)}" for task, n in sorted(tasks.items()))
        found.append(f"the folder mixes tasks ({mix} runs): a language model's perplexity "
                     f"(per corpus token) and a translation's (per target token) are different "
                     f"measures, so the task is part of every point: they never share a row")
    if odd := [f"{escape(name(r))} ({', '.join(f'{k} {v}' for k, v in r['_left_out'].items())})"
               for r in _by_point(results, by) if r.get("_left_out")]:
        found.append(f"{len(odd)} run(s) hold values no run records (NaN, inf, or "
                     f"{ABSURD:g} and beyond), left out of every mean, test and plot, and "
                     f"empty in runs.csv: {_named(odd)}")
    if counts.get("duplicates"):
        found.append(f"{counts['duplicates']} duplicate result(s) (a run_id seen twice) were "
                     f"counted once")
    if counts.get("strays"):
        found.append(f"{counts['strays']} result(s) that the sweep's manifest.json does not list "
                     f"(a single run or another sweep written into its folder) were left out")
    if counts.get("old"):
        found.append(f"{counts['old']} result(s) from an older runner (schema_version 1, whose "
                     f"held-out perplexity scored only part of the held-out tokens) were "
                     f"skipped: re-run them with overwrite=true to compare them")
    return found


def samples(results: list[dict], by: list[str]) -> list[str]:
    """One generated text per point (its lowest seed), so a reader sees what perplexity
    means, and what the bidirectional misuse produces. Each as Markdown: "- point: `text`",
    the points in their values' order (32, 128, 1024; never as text)."""
    chosen = {}
    for r in _by_point(results, by):
        if "sample" in r:
            config = {"task": r.get("task"), **flatten(r["config"])}  # task: a mixed folder's key
            chosen.setdefault(", ".join(f"{k}={config.get(k)}" for k in by) or "all",
                              r["sample"]["text"])
    return [f"- {escape(point)}: {code_span(text)}" for point, text in chosen.items()]


def page_markdown(title: str, intro: str, tables: str, plots: list[Path], env: list[str],
                  warns: list[str], texts: list[str], findings: list[str] = ()) -> str:
    parts = [f"# {escape(title)}\n", intro + "\n"]
    if warns:
        parts.append("## Warnings\n\n" + "\n".join(f"- {w}" for w in warns) + "\n")
    parts.append("## Tables\n\n" + tables)
    if findings:
        parts.append("## The companion note's findings\n\n" + "\n\n".join(findings) + "\n")
    pngs = [p for p in plots if p.suffix == ".png"]
    if pngs:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{escape(p.stem)}]({quote(p.name)})"
                                                 for p in pngs) + "\n")
    parts.append("## Environment\n\n" + "\n".join(env) + "\n")
    if texts:
        parts.append("## Samples\n\n" + "\n".join(texts) + "\n")
    return "\n".join(parts)


def to_html(markdown: str, folder: Path | None, title: str) -> str:
    """`markdown` as one self-contained HTML page: CommonMark with pipe tables (markdown-it-py),
    raw HTML in the Markdown shown as text (a "<script>" in a cell is escaped, never run), and
    every image embedded as a data URI read from its path relative to `folder`. An image that
    cannot be read (missing; or `folder` None) becomes the text "[image not found: PATH]"."""
    tokens = _MARKDOWN.parse(markdown)
    for token in tokens:
        if token.children:
            token.children = [_embedded(t, folder) if t.type == "image" else t
                              for t in token.children]
    body = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return (f"<!doctype html><html><head><meta charset='utf-8'/><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body>{body}</body></html>\n")


def _embedded(image: Token, folder: Path | None) -> Token:
    """The image token with its file's bytes as its src, or a text token saying it is missing.
    A src that is already a data URI is kept; any other is a path (percent-decoded) under
    `folder`, so that the page never has anything to fetch."""
    src = image.attrs.get("src", "")
    if src.startswith("data:"):
        return image
    path = unquote(str(src))
    try:
        if folder is None:
            raise FileNotFoundError(path)
        data = base64.b64encode((Path(folder) / path).read_bytes()).decode()
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return Token("text", "", 0, content=f"[image not found: {path}]")
    mime = mimetypes.guess_type(path)[0] or ""
    image.attrs["src"] = f"data:{mime if mime.startswith('image/') else 'image/png'};base64,{data}"
    return image


def write_page(folder: Path, markdown: str, title: str) -> tuple[Path, Path]:
    md, page = folder / "report.md", folder / "report.html"
    write_text_atomic(md, markdown)
    write_text_atomic(page, to_html(markdown, folder, title))
    return md, page
