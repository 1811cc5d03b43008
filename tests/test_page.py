"""The report page: warnings a reader needs, and a self-contained HTML."""
import re
import xml.etree.ElementTree as ET

from runner.page import page_markdown, to_html, warnings_for, write_page


def env_result(device="AMD EPYC", jobs=1, threads=2, sees_future=False, commit="a" * 40):
    return {"environment": {"device_name": device, "device": "cpu", "concurrent_jobs": jobs,
                            "threads": threads, "git_commit": commit, "git_dirty": False,
                            "torch": "2.13.0", "python": "3.11.7"},
            "sees_future": sees_future, "config": {"seed": 0}}


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
    assert "<h1>x</h1><p>y <code>z</code></p>" in to_html("# x\ny `z`\n", None, "t")
