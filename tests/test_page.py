"""The report page: warnings a reader needs, and a self-contained HTML."""
import base64
import re
import xml.etree.ElementTree as ET

from runner.report.page import (
    environment_lines,
    page_markdown,
    samples,
    to_html,
    warnings_for,
    write_page,
)


def env_result(device="AMD EPYC", jobs=1, threads=2, sees_future=False, commit="a" * 40,
               path="multirun/0", **fields):
    """The parts of a result the page reads; `fields` set environment or metrics entries. By
    default a CPU run that had its threads' CPU time on a quiet 2-core machine."""
    env = {"device_name": device, "device": "cpu", "concurrent_jobs": jobs, "threads": threads,
           "git_commit": commit, "git_dirty": False, "git_diff_sha1": None,
           "torch": "2.13.0", "python": "3.11.7", "cpu_count": 2, "load_avg_start": 0.4,
           "load_avg_end": 1.9}
    metrics = {"tokens_per_sec": 1000.0, "train_seconds": 10.0,
               "train_cpu_seconds": 10.0 * threads}
    for key, value in fields.items():
        (env if key in env else metrics)[key] = value
    return {"environment": env, "metrics": metrics, "sees_future": sees_future,
            "config": {"seed": 0}, "task": "language_model", "run_id": "0123456789ab",
            "_path": path}


NONE_FAILED = {"failed": 0, "diverged": 0}


def test_no_warnings_for_a_uniform_sweep():
    assert warnings_for([env_result(), env_result()], NONE_FAILED) == []


def test_warnings_name_what_makes_numbers_incomparable():
    results = [env_result(), env_result(device="NVIDIA H100", jobs=4, threads=1,
                                        sees_future=True, commit="b" * 40)]
    text = "\n".join(warnings_for(results, {"failed": 2, "diverged": 1}))
    assert "different devices (AMD EPYC, NVIDIA H100)" in text
    assert "different numbers of runs sharing a device (1, 4)" in text
    assert "different thread counts (1, 2)" in text
    assert "bidirectional" in text and "different code versions" in text
    assert "2 failed and 1 diverged runs" in text


def test_html_is_self_contained_with_tables_and_embedded_plots(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    (tmp_path / "plot_x.png").write_bytes(png)
    tables = "| metric | 32 | 64 |\n| --- | --- | --- |\n| tokens/sec | 1,000 | 2,000 |\n"
    md = page_markdown("sweep", "6 runs read.", tables, [tmp_path / "plot_x.png"],
                       ["- devices: cpu"], ["tokens/sec compares <things>"], ["- a: `text`"])
    md_path, html_path = write_page(tmp_path, md, "sweep")
    assert md_path.read_text() == md and "![plot_x](plot_x.png)" in md
    page = html_path.read_text()
    assert not re.search(r'src="(?!data:)', page)  # nothing to fetch: every image inline
    assert "data:image/png;base64,iVBORw0KGgo" in page
    assert "&lt;things&gt;" in page  # text is escaped
    body = ET.fromstring(page.removeprefix("<!doctype html>"))  # well-formed, too
    rows = [[c.text for c in tr] for tr in body.iter("tr")]
    assert rows == [["metric", "32", "64"], ["tokens/sec", "1,000", "2,000"]]
    assert [h.text for h in body.iter("h2")] == ["Warnings", "Tables", "Plots", "Environment",
                                                 "Samples"]


def test_html_of_markdown_without_tables():
    page = to_html("# x\ny `z`\n", None, "t")  # markdown-it puts a line break between blocks
    assert "<h1>x</h1>\n<p>y <code>z</code></p>" in page


def parsed(page: str) -> ET.Element:
    """The page as XML: it is well-formed (markdown-it's XHTML output), so ElementTree reads it."""
    return ET.fromstring(page.removeprefix("<!doctype html>"))


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


def test_a_pipe_table_is_one_table_with_its_rows_and_cells():
    md = ("Before.\n\n| metric | 32 | 64 | 128 |\n| --- | --- | --- | --- |\n"
          "| training perplexity | 3.00 ± 0.10 * | 4.00 † | — |\n| tokens/sec | 1,000 | 2,000 |\n"
          "\nAfter.\n")
    [table] = parsed(to_html(md, None, "t")).iter("table")
    rows = list(table.iter("tr"))
    assert len(rows) == 3
    assert [len(list(r.iter("th"))) for r in rows] == [4, 0, 0]
    assert [len(list(r.iter("td"))) for r in rows] == [0, 4, 4]  # a short row is padded
    assert [text_of(c) for c in rows[1]] == ["training perplexity", "3.00 ± 0.10 *", "4.00 †",
                                             "—"]
    assert [text_of(c) for c in rows[2]] == ["tokens/sec", "1,000", "2,000", ""]


def test_cells_and_text_are_escaped_never_markup():
    md = ("| point | note |\n| --- | --- |\n| <script>alert(1)</script> | a & b, &amp; |\n"
          "| a \\| b | `x<y` and ``a`b`` |\n\n- <b>bold?</b> & <http://example.com>\n")
    page = to_html(md, None, "<title> & more")
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>a &amp; b, &amp;</td>" in page  # "&amp;" in Markdown is the entity: "&"
    assert "<title>&lt;title&gt; &amp; more</title>" in page
    body = parsed(page)
    rows = [[text_of(c) for c in tr] for tr in body.iter("tr")]
    assert rows == [["point", "note"], ["<script>alert(1)</script>", "a & b, &"],
                    ["a | b", "x<y and a`b"]]  # an escaped pipe stays in its cell
    assert [c.text for c in body.iter("code")] == ["x<y", "a`b"]
    assert text_of(next(body.iter("li"))).startswith("<b>bold?</b> & ")


def test_run_names_and_samples_read_as_themselves(tmp_path):
    """Text the page takes from runs (folders, device names, config values, generated text)
    is escaped or fenced in the Markdown, so that it shows as it is, whatever it holds."""
    odd = "runs/a*b*|<c>_x_ [1](2) &amp;"
    results = [env_result(path=odd, load_avg_end=5.0), env_result(device="x|y <z>")]
    results[0]["sample"] = {"text": "<unk> ``a`b` \n# not a heading"}
    results[0]["config"]["model"] = {"cell": "r|n*n"}
    md = page_markdown("sweep_*1*", "i", "", [], environment_lines(results),
                       warnings_for(results, NONE_FAILED), samples(results, ["model.cell"]))
    body = parsed(to_html(md, tmp_path, "t"))
    assert [h.text for h in body.iter("h1")] == ["sweep_*1*"]  # the folder's name
    assert [h.text for h in body.iter("h2")] == ["Warnings", "Tables", "Environment", "Samples"]
    items = [text_of(li) for li in body.iter("li")]
    assert f"{odd} (load 5.0 on 2 cores)" in next(i for i in items if "oversubscribed" in i)
    assert any("different devices (AMD EPYC, x|y <z>)" in i for i in items)
    assert items[-1] == "model.cell=r|n*n: <unk> ``a`b`  # not a heading"
    assert [c.text for c in body.iter("code")] == ["<unk> ``a`b`  # not a heading"]
    assert not list(body.iter("em")) and not list(body.iter("a"))


def test_images_are_embedded_with_their_own_bytes(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    (tmp_path / "plot a(1).png").write_bytes(png)  # a name Markdown must quote
    md = page_markdown("t", "i", "", [tmp_path / "plot a(1).png"], [], [], [])
    [img] = parsed(to_html(md, tmp_path, "t")).iter("img")
    assert img.get("alt") == "plot a(1)"
    prefix, data = img.get("src").split(",", 1)
    assert prefix == "data:image/png;base64" and base64.b64decode(data) == png


def test_a_missing_image_is_named_in_the_page_not_a_crash(tmp_path):
    """A plot gone from the folder (or no folder) leaves "[image not found: NAME]" where it
    was, and nothing for the page to fetch."""
    (tmp_path / "here.png").write_bytes(b"\x89PNG")
    md = "# t\n\n![here](here.png)\n\n![gone](gone.png)\n\n![far](http://example.com/x.png)\n"
    page = to_html(md, tmp_path, "t")
    assert not re.search(r'src="(?!data:)', page)
    body = parsed(page)
    assert [i.get("alt") for i in body.iter("img")] == ["here"]
    assert "[image not found: gone.png]" in text_of(body)
    assert "[image not found: http://example.com/x.png]" in text_of(body)
    assert "[image not found: here.png]" in to_html(md, None, "t")


def test_oversubscribed_runs_are_named_with_what_was_measured():
    results = [env_result(path="quiet"),
               env_result(path="loaded", load_avg_end=5.14),  # 5.1 runnable on 2 cores
               # 2 threads for 10 s of training but 9.8 CPU seconds: 0.49 of them
               env_result(path="starved", train_cpu_seconds=9.8),
               env_result(path="both", load_avg_start=3.0, train_cpu_seconds=2.0)]
    [text] = [w for w in warnings_for(results, NONE_FAILED) if "oversubscribed" in w]
    assert text.startswith("3 run(s) measured tokens/sec on an oversubscribed machine")
    assert "not a speed figure" in text and "quiet" not in text
    assert "loaded (load 5.1 on 2 cores)" in text
    assert "starved (utilisation 0.49 of its 2 threads)" in text
    assert "both (load 3.0 on 2 cores, utilisation 0.10 of its 2 threads)" in text


def test_no_oversubscription_warning_without_the_fields_or_off_the_cpu():
    results = [env_result(load_avg_start=None, load_avg_end=None, train_cpu_seconds=None),
               env_result(cpu_count=None, load_avg_end=9.0),
               # a GPU run's process waits on the GPU, not on cores: utilisation says nothing
               env_result(device="NVIDIA H100", train_cpu_seconds=1.0),
               env_result(train_seconds=0.0, train_cpu_seconds=0.0),
               env_result(tokens_per_sec=None, train_cpu_seconds=1.0)]  # failed: no speed
    results[2]["environment"]["device"] = "cuda:0"
    assert not [w for w in warnings_for(results, NONE_FAILED) if "oversubscribed" in w]


def test_each_dirty_state_of_a_commit_is_a_code_version_of_its_own():
    a, b = "1" * 40, "2" * 40
    results = [env_result(commit="c" * 40, git_dirty=True, git_diff_sha1=a),
               env_result(commit="c" * 40, git_dirty=True, git_diff_sha1=b),
               env_result(commit="c" * 40, git_dirty=True, git_diff_sha1=b),
               env_result(commit="c" * 40)]
    [text] = [w for w in warnings_for(results, NONE_FAILED) if "code versions" in w]
    assert ("cccccccccc (1 run), cccccccccc+dirty 11111111 (1 run), cccccccccc+dirty 22222222 "
            "(2 runs)") in text
    assert environment_lines(results)[-1] == (
        "- code: cccccccccc (1 run), cccccccccc+dirty 11111111 (1 run), "
        "cccccccccc+dirty 22222222 (2 runs)")
    same = [env_result(git_dirty=True, git_diff_sha1=a) for _ in range(2)]
    assert not [w for w in warnings_for(same, NONE_FAILED) if "code versions" in w]
