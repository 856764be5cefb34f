"""`etprof report`: the self-contained HTML page, checked as text and as rendered by Chromium.

The HTML tests run everywhere. The browser tests render real pages in headless Chromium (Debian's
package, installed by the `browser` fixture where missing: see tests/browser.py) and check the
rendered DOM and a screenshot; they skip, saying why, where Chromium cannot be had.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from etprof.analyzers._report import Report, ReportOptions, build_report
from etprof.analyzers.breakdown import BreakdownOptions, breakdown
from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.program.types import Instruction, ProgramInfo
from etprof.render import render
from etprof.render._html_svg import BUCKET_COLORS, FASTER, SIDE_COLORS
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path
from etprof.units import ms_text

import browser as chromium
import etdump_builder
from conftest import DATA, SAMPLES, assert_one_line_error, run_cli, sample_traces

TRACES = [*sample_traces(), DATA / "small_xnnpack.etdp"]
QUANTONLY = SAMPLES / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = SAMPLES / "mv3_xnnpack_q8.etdp"
FULLY_DELEGATED = SAMPLES / "mv2_xnnpack_fp32.etdp"
PORTABLE = SAMPLES / "mv3_portable.etdp"
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "wbr", "source", "area", "base"}
SVG_LEAVES = {"rect", "line", "path", "circle"}  # may be written <x/> or <x></x>
PORTABLE_ORANGE = SIDE_COLORS["portable"]
XNNPACK_BLUE = BUCKET_COLORS["delegate_compute"]


# -- a parsed page --------------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parents: tuple[str, ...]
    children: list[Element] = field(default_factory=list)
    text: str = ""


class Page(HTMLParser):
    """Every element with its attributes, ancestors, children and text; nesting errors noted."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.errors: list[str] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {[e.tag for e in self.stack]}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, tuple(e.tag for e in self.stack))
        if self.stack:
            self.stack[-1].children.append(el)
        self.elements.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1].tag if self.stack else None}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el.text += data
        self.texts.append(data)

    def find(self, tag: str, cls: str | None = None, **data: str) -> list[Element]:
        out = []
        for el in self.elements:
            if el.tag != tag or (cls is not None and cls not in el.attrs.get("class", "").split()):
                continue
            if all(el.attrs.get(f"data-{k}") == v for k, v in data.items()):
                out.append(el)
        return out

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.texts))


def titles(el: Element) -> list[str]:
    return [c.text for c in el.children if c.tag == "title"]


def assert_offline(html: str) -> None:
    """Nothing on the page can reach the network: no URL at all, no external resource tags."""
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE), re.search(
        r".{40}(https?:|//[a-z0-9.-]+\.[a-z]{2,}/).{40}", html, re.IGNORECASE
    )
    page = Page(html)
    assert not page.find("script") and not page.find("link") and not page.find("iframe")
    assert not any(
        "src" in e.attrs or ("href" in e.attrs and not e.attrs["href"].startswith("#"))
        for e in page.elements
    )
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # the CSP forbids fetching even if something slipped in


def check_side_charts(page: Page, trace: Trace, report: Report, side: int = 0) -> None:
    """One side's charts hold one mark per bucket, operator row and iteration, each titled."""
    s = report.sides[side]
    buckets = page.find("svg", "buckets")
    assert len(buckets) == 1
    segs = [e for e in buckets[0].children if e.tag == "rect"]
    expected = [
        str(b)
        for side_ in report.sides
        for b in side_.breakdown.buckets.table()["bucket"]
        if b != "run_model"
    ]
    assert [e.attrs["data-bucket"] for e in segs] == expected
    assert all(titles(e) and "ms" in titles(e)[0] for e in segs)

    ops = s.breakdown.operators.frame
    events = trace.measured().events
    kernels = set(events.loc[events["kind"] == "kernel", "op"].astype(str))
    shown = ops.head(report.top)
    charts = page.find("svg", "operators")
    if len(ops):
        bars = [
            b for g in charts[side].children if g.tag == "g" for b in g.children if b.tag == "rect"
        ]
        assert len(bars) == min(report.top, len(ops))
        portable = [b for b in bars if b.attrs["data-side"] == "portable"]
        # every portable bar is a kernel the trace really ran, and all of them are shown when few
        assert {titles(b)[0].split(" (")[0] for b in portable} <= kernels
        assert len(portable) == int((shown["side"] == "portable").sum())
        if len(kernels) <= report.top and len(ops) <= report.top:
            assert len(portable) == len(kernels)

    iters = page.find("svg", "iterations")[side]
    bars = [e for e in iters.children if e.tag == "rect" and "iter" in e.attrs.get("class", "")]
    assert len(bars) == trace.iterations
    dropped = [b for b in bars if b.attrs["data-dropped"] == "true"]
    assert len(dropped) == trace.warmup
    assert [titles(b)[0].split(":")[0] for b in bars] == [
        f"iteration {i}" for i in range(trace.iterations)
    ]
    band = [e for e in iters.children if "warmup-band" in e.attrs.get("class", "")]
    assert len(band) == (1 if trace.warmup else 0)
    # bar heights follow the run-model times: the tallest bar is the slowest iteration
    heights = np.array([float(b.attrs["height"]) for b in bars])
    rm = s.iterations.frame["run_model_ms"].to_numpy()
    assert int(heights.argmax()) == int(rm.argmax())
    assert np.allclose(heights / heights.max(), rm / rm.max(), atol=1e-3)


# -- the page as HTML ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single_reports() -> dict[Path, tuple[Trace, Report, str]]:
    out = {}
    for path in TRACES:
        trace = load_trace(path)
        report = build_report(trace)
        out[path] = (trace, report, render(report, "html"))
    return out


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_every_trace_makes_a_complete_offline_page(
    path: Path, single_reports: dict[Path, tuple[Trace, Report, str]]
) -> None:
    trace, report, html = single_reports[path]
    assert html.startswith("<!DOCTYPE html>")
    page = Page(html)
    assert not page.errors, page.errors[:5]
    assert_offline(html)
    check_side_charts(page, trace, report)
    assert 'id="llm"' not in html and 'class="step"' not in html  # no LLM run: no LLM section
    assert trace.model in page.find("title")[0].text
    assert report.headline() in page.text
    fb = report.sides[0].fallback
    assert fb is not None  # every sample and the small program can be explained
    for line in fb.notes():
        assert re.sub(r"`", "", line) in page.text
    fix = page.find("p", "fix")
    assert len(fix) == sum(n.startswith("Fix:") for n in fb.notes())


def test_single_trace_page_states_the_figures(
    single_reports: dict[Path, tuple[Trace, Report, str]],
) -> None:
    trace, _, html = single_reports[QUANTONLY]
    page = Page(html)
    b = breakdown(trace, BreakdownOptions())
    assert ms_text(b.stats.mean_ms) in page.text  # three significant digits: "10.8 ms"
    table = b.buckets.table()
    for _, row in table.iterrows():
        seg = [e for e in page.find("rect", "seg", bucket=row["bucket"])]
        if row["bucket"] != "run_model":
            assert f"{row['share_pct']:.1f}% of run model" in titles(seg[0])[0]
    assert "warm-up (10 dropped)" in page.text


@pytest.fixture(scope="module")
def pair() -> tuple[Trace, Trace, Report]:
    a, b = load_trace(QUANTONLY), load_trace(MIXED)
    return a, b, build_report(a, b)


def test_a_pair_shows_the_diff_and_both_sides(pair: tuple[Trace, Trace, Report]) -> None:
    a, b, report = pair
    html = render(report, "html")
    page = Page(html)
    assert not page.errors
    assert_offline(html)
    d = diff_traces(a, b, DiffOptions())
    assert report.diff is not None and report.diff.headline() == d.headline()
    verdict = page.find("p", "verdict")
    assert len(verdict) == 1 and verdict[0].text == d.headline()
    assert d.comparison.verdict in ("faster", "slower", "no significant change")
    assert verdict[0].attrs["class"].split()[-1] == {"faster": "faster", "slower": "slower"}.get(
        d.comparison.verdict, "same"
    )
    for side, trace in enumerate((a, b)):
        check_side_charts(page, trace, report, side)
    assert len(page.find("svg", "iterations")) == 2 and len(page.find("svg", "operators")) == 2
    deltas = page.find("svg", "deltas")
    assert len(deltas) == 2
    # both 100% bars are equally long: each side's shares add up to its run model
    segs = [float(e.attrs["width"]) for e in page.find("rect", "seg")]
    k = len(d.buckets[d.buckets["bucket"] != "run_model"])  # the buckets of each side
    assert len(segs) == 2 * k
    assert sum(segs[:k]) == pytest.approx(sum(segs[k:]), abs=0.05) and sum(segs[:k]) > 500
    bucket_bars = [e for e in deltas[0].children if e.tag == "rect"]
    assert len(bucket_bars) == k
    signs = [e.attrs["data-sign"] for e in bucket_bars]
    expected = d.buckets[d.buckets["bucket"] != "run_model"]["delta_ms"]
    assert signs == ["up" if x > 0 else "down" if x < 0 else "zero" for x in expected]
    # A's fix line quotes B's measured run model; B's explanation quotes nothing
    fa, fb = report.sides[0].fallback, report.sides[1].fallback
    assert fa.comparison is not None and fa.comparison.model == b.model
    assert fb.comparison is None
    fix = page.find("p", "fix")
    assert len(fix) == 1 and "measured:" in fix[0].text and b.model in fix[0].text
    assert f"{fa.comparison.run_model_ms:.2f} ms" in fix[0].text


def test_the_report_is_a_result_every_renderer_formats(pair: tuple[Trace, Trace, Report]) -> None:
    _, b, report = pair
    doc = json.loads(render(report, "json"))
    assert doc["schema"] == "etprof.report" and [s["label"] for s in doc["sides"]] == [
        "A",
        "B",
    ]
    assert doc["diff"]["headline"] == report.headline()
    assert doc["sides"][0]["fallback"]["comparison"]["model"] == b.model
    text = render(report, "table")
    assert " ".join(text.split()).startswith(report.headline()) and "B: top operators" in text
    assert "A: buckets" in render(report, "markdown")


def test_text_from_the_trace_is_escaped(tmp_path: Path) -> None:
    trace = load_trace(write_hostile_trace(tmp_path))
    html = render(build_report(trace), "html")
    page = Page(html)
    assert not page.errors
    assert not page.find("script") and not page.find("img")
    svg_tags = {e.tag for e in page.elements if "svg" in e.parents}
    assert svg_tags <= {"g", "rect", "line", "text", "title"}, svg_tags
    assert_offline(html)
    assert "<img" not in html and "<script" not in html.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;" in html and '<b>"&amp;' in page.text
    # the names reach the charts' titles intact once unescaped
    ops = [titles(b)[0] for b in page.find("rect", "bar")]
    assert any(t.startswith("<img src=x onerror=alert(1)>.out (portable") for t in ops)


def test_a_trace_without_operators_still_makes_a_page(tmp_path: Path) -> None:
    runs = [
        etdump_builder.Run(
            "Execute",
            [etdump_builder.Prof("Method::execute", 0, 10_000 * i, 10_000 * i + 3_000 + i)],
        )
        for i in range(12)
    ]
    path = etdump_builder.write(tmp_path / "bare.etdp", runs)
    trace = load_trace(path)
    page = Page(render(build_report(trace, options=ReportOptions(warmup=2)), "html"))
    assert not page.errors
    assert not page.find("svg", "operators") and "No operator events" in page.text
    assert "No explanation:" in page.text
    iters = [e for e in page.find("rect", "iter")]
    assert len(iters) == 12 and sum(e.attrs["data-dropped"] == "true" for e in iters) == 2


def test_other_results_render_as_plain_pages() -> None:
    a, b = load_trace(QUANTONLY), load_trace(MIXED)
    for result in (breakdown(a, BreakdownOptions()), diff_traces(a, b, DiffOptions())):
        html = render(result, "html")
        page = Page(html)
        assert not page.errors
        assert_offline(html)
        assert len(page.find("table")) == len(result.tables())
        headline = getattr(result, "headline", None)
        if headline is not None:
            assert page.find("p", "verdict")[0].text == headline()


def write_hostile_trace(folder: Path) -> Path:
    """A trace whose operator and model names are markup."""
    P = etdump_builder.Prof
    runs = [etdump_builder.Run("Default", [P("Method::init", 0, 0, 10, chain=-1)])]
    for i in range(12):
        t = 1_000_000 * (i + 1)
        runs.append(
            etdump_builder.Run(
                "Execute",
                [
                    P(None, 0, t + 1_000, t + 9_000, delegate='Conv "<b>"&amp; #1'),
                    P("DELEGATE_CALL", 0, t + 500, t + 10_000),
                    P("native_call_<img src=x onerror=alert(1)>.out", 1, t + 11_000, t + 19_000),
                    P("OPERATOR_CALL", 1, t + 10_500, t + 20_000),
                    P("Method::execute", 0, t, t + 21_000, chain=-1),
                ],
            )
        )
    path = etdump_builder.write(folder / "hostile.etdp", runs)
    meta = TraceMeta(
        program=ProgramInfo(
            path="x.pte",
            model="<script>alert('m')</script>",
            instructions=(
                Instruction(0, "delegate", "XnnpackBackend", 0),
                Instruction(1, "operator", "aten::<img src=x onerror=alert(1)>.out"),
            ),
            delegates=("XnnpackBackend",),
        ),
        run=RunSettings(iters=12, warmup=2, threads=1),
    )
    sidecar_path(path).write_text(meta.to_json(), encoding="utf-8")
    return path


# -- the command -----------------------------------------------------------------------------------

# Runs the real entry point, then records every module imported.
RUNNER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "etprof"
from etprof.cli import main
main()
"""


def test_cli_writes_the_report_without_torch(tmp_path: Path) -> None:
    out, modules = tmp_path / "r.html", tmp_path / "modules.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            str(modules),
            "report",
            str(QUANTONLY),
            str(MIXED),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"wrote {out}")
    top = {m.split(".")[0] for m in json.loads(modules.read_text())}
    assert "pandas" in top and not top & {"torch", "executorch", "torchvision"}
    html = out.read_text()
    assert_offline(html)
    assert len(Page(html).find("svg", "iterations")) == 2
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left behind


def test_cli_default_output_is_report_html(tmp_path: Path) -> None:
    result = run_cli("report", DATA / "small_xnnpack.etdp", "--top", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = Page((tmp_path / "report.html").read_text())
    assert len(page.find("rect", "bar")) == 3


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-o", "missing-dir/r.html"], ["folder", "does not exist"]),
        (["-o", "r.json"], ["does not end in .html"]),
        (["--top", "0"], ["--top 0"]),
        (["--warmup", "-1"], ["--warmup -1 is outside"]),
        (["--etrecord", "x.etrecord"], ["--etrecord needs --pte"]),
        (["--pte-b", "x.pte"], ["without a trace B"]),
    ],
    ids=["no-folder", "not-html", "top", "warmup", "etrecord", "pte-b"],
)
def test_cli_refuses_bad_options_up_front(
    args: list[str], needles: list[str], tmp_path: Path
) -> None:
    result = run_cli("report", QUANTONLY, *args, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert not list(tmp_path.iterdir())


def test_cli_bad_inputs_leave_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("old")
    bad = tmp_path / "bad.etdp"
    bad.write_bytes(b"not an etdump at all" * 10)
    for args, needles in (
        ([tmp_path / "nope.etdp"], ["no such trace"]),
        ([tmp_path], ["is a directory"]),
        ([bad], []),
        ([SAMPLES / "mv2_xnnpack_fp32.etdp", bad], []),
    ):
        result = run_cli("report", *args, "-o", out)
        assert_one_line_error(result, *needles)
        assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.etdp", "r.html"]


def test_different_models_are_compared_with_a_warning(tmp_path: Path) -> None:
    """The report has no CI gate: two programs that look like different models are compared,
    with a line saying they differ in structure (issue 22; --force is not needed)."""
    out = tmp_path / "r.html"
    result = run_cli("report", SAMPLES / "mv2_xnnpack_fp32.etdp", QUANTONLY, "-o", out)
    assert result.returncode == 0, result.stderr
    page = Page(out.read_text())
    assert any(
        "differ in structure" in li.text and "module paths" in li.text
        for li in page.find("li", "warning")
    )


# -- the page in a browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> chromium.Browser:
    try:
        return chromium.Browser(chromium.find_or_install())
    except chromium.Unavailable as exc:
        pytest.skip(f"no headless Chromium: {exc}")


@dataclass(frozen=True)
class Shot:
    dom: Page  # as rendered by the browser
    pixels: np.ndarray


@pytest.fixture(scope="module")
def shots(
    browser: chromium.Browser,
    tmp_path_factory: pytest.TempPathFactory,
    single_reports: dict[Path, tuple[Trace, Report, str]],
    pair: tuple[Trace, Trace, Report],
) -> dict[str, Shot]:
    folder = tmp_path_factory.mktemp("report-shots")
    pages = {
        "quantonly": single_reports[QUANTONLY][2],
        "delegated": single_reports[FULLY_DELEGATED][2],
        "portable": single_reports[PORTABLE][2],
        "pair": render(pair[2], "html"),
    }
    out = {}
    for name, text in pages.items():
        html = folder / f"{name}.html"
        html.write_text(text, encoding="utf-8")
        png = folder / f"{name}.png"
        dom = browser.render(html, png)
        out[name] = Shot(Page(dom), chromium.read_png(png))
    return out


def test_browser_renders_the_charts(
    shots: dict[str, Shot],
    single_reports: dict[Path, tuple[Trace, Report, str]],
    pair: tuple[Trace, Trace, Report],
) -> None:
    for name, path in (
        ("quantonly", QUANTONLY),
        ("delegated", FULLY_DELEGATED),
        ("portable", PORTABLE),
    ):
        trace, report, _ = single_reports[path]
        assert not shots[name].dom.errors
        check_side_charts(shots[name].dom, trace, report)
    dom = shots["quantonly"].dom
    assert "Why operators ran on portable kernels" in dom.text
    fix = dom.find("p", "fix")
    assert len(fix) == 1 and "XnnpackPartitioner" in fix[0].text
    dom = shots["pair"].dom
    assert len(dom.find("svg", "iterations")) == 2 and len(dom.find("svg", "deltas")) == 2
    assert dom.find("p", "verdict")[0].text == pair[2].headline()
    assert "faster by" in pair[2].headline()


def test_screenshot_is_the_page_not_a_blank(shots: dict[str, Shot]) -> None:
    for name, shot in shots.items():
        px = shot.pixels
        assert px.shape[:2] == (chromium.SIZE[1], chromium.SIZE[0]), name
        rgb = px[..., :3].reshape(-1, 3).astype(np.uint32)
        packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        colours, counts = np.unique(packed, return_counts=True)
        assert len(colours) > 200, (name, len(colours))  # text antialiasing, charts, cards
        assert counts.max() < 0.9 * len(packed), name  # no single colour fills the page
        assert chromium.count_color(px, XNNPACK_BLUE) > 500 or name == "portable", name


def test_screenshot_colours_follow_where_operators_ran(shots: dict[str, Shot]) -> None:
    orange = {n: chromium.count_color(s.pixels, PORTABLE_ORANGE) for n, s in shots.items()}
    blue = {n: chromium.count_color(s.pixels, XNNPACK_BLUE) for n, s in shots.items()}
    # div.out (portable) is a bar and a bucket segment in mv3 q8 quant-only; mv2 fp32 runs
    # everything in XNNPACK, so only the legend's swatch is orange; portable mv3 is all orange
    assert orange["quantonly"] > 1000
    assert orange["delegated"] < orange["quantonly"] / 4
    assert orange["portable"] > 10 * orange["quantonly"]
    assert blue["portable"] < blue["delegated"] / 10
    # the warm-up band and the dropped bars are painted
    assert chromium.count_color(shots["quantonly"].pixels, "#eef1f5") > 5000
    # B is faster: the verdict box is green, and the bucket deltas are green bars
    assert chromium.count_color(shots["pair"].pixels, "#e6f4ea") > 10000
    assert chromium.count_color(shots["pair"].pixels, FASTER) > 2000


def test_a_negative_bucket_gets_no_width_and_the_bar_keeps_its_length() -> None:
    from etprof.render._html_svg import Segment, stacked_buckets

    def widths(pcts: list[float]) -> list[float]:
        segs = [Segment(f"b{i}", f"b{i}", p / 10, p) for i, p in enumerate(pcts)]
        page = Page(stacked_buckets([("m", segs, 10.0)], width=1000))
        return [float(e.attrs["width"]) for e in page.find("rect", "seg")]

    plain, negative = widths([60.0, 30.0, 10.0]), widths([70.0, 35.0, -5.0])
    assert negative[2] == 0.0 and min(plain) > 0
    assert sum(negative) == pytest.approx(sum(plain), abs=0.05)
    assert negative[0] / sum(negative) == pytest.approx(70 / 105, abs=1e-3)


def test_png_reader_matches_a_known_image(tmp_path: Path) -> None:
    """The reader undoes every filter type: checked on an image written with all five."""
    import struct
    import zlib

    rng = np.random.default_rng(0)
    h, w = 9, 7
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    image[3:6] = image[2]  # some repetition, as in real screenshots
    prev = np.zeros((w, 3), dtype=np.int16)
    rows = []
    for r in range(h):
        cur = image[r].astype(np.int16)
        left = np.vstack([np.zeros((1, 3), np.int16), cur[:-1]])
        upleft = np.vstack([np.zeros((1, 3), np.int16), prev[:-1]])
        kind = r % 5
        if kind == 4:  # Paeth, written with the reference definition, pixel by pixel
            pred = np.zeros_like(cur)
            for x in range(w):
                for ch in range(3):
                    a, b, c = int(left[x, ch]), int(prev[x, ch]), int(upleft[x, ch])
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred[x, ch] = a if pa <= pb and pa <= pc else b if pb <= pc else c
        else:
            pred = [np.zeros_like(cur), left, prev, (left + prev) // 2][kind]
        rows.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
        prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png = tmp_path / "t.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    assert np.array_equal(chromium.read_png(png), image)


def test_latency_chart_axis_is_not_squashed_by_one_slow_step() -> None:
    """One 14 ms step among 0.4 ms ones: the axis stops near the others, the slow step sits on
    the top edge marked as above the axis, and every step is still drawn."""
    from etprof.render._html_latency import axis_limit, latency_by_position

    points = [(16 + i, 0.40 + 0.01 * i, 0) for i in range(8)] + [(20, 14.2, 1)]
    assert axis_limit([ms for _, ms, _ in points]) == pytest.approx(0.47)
    svg = latency_by_position(points, (0.01, 0.24), "decode latency")
    assert svg.count('<circle class="step"') == len(points)
    clipped = re.findall(r'data-clipped="true" cx="[\d.]+" cy="([\d.]+)"', svg)
    assert len(clipped) == 1 and float(clipped[0]) == pytest.approx(14.0)  # the top edge
    assert "1 step above the axis, up to 14.20 ms" in svg
    ticks = [float(t) for t in re.findall(r'class="tick" text-anchor="end">([\d.]+)<', svg)]
    assert ticks and max(ticks) < 1.0  # the axis fits the ordinary steps
    steady = latency_by_position(points[:8], None, "decode latency")
    assert 'data-clipped="true"' not in steady and "above the axis" not in steady
