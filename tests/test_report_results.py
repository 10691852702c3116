"""The report a researcher reads: results first, the study's labels in every figure, PDF
figures with their numbers, readable tables, a methods paragraph equal to summary.json, a
simulated-data banner, print and accessibility (parsed HTML and SVG, Chromium)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from conftest import ROOT
from response_factory import make_key
from test_accessibility_browser import axe_source, violations  # noqa: F401  (fixture)
from test_survey_browser import browser  # noqa: F401  (fixture: one Chromium)

from glidemed.analysis.figures import distribution_figure, ratings_figures
from glidemed.analysis.labels import Labels
from glidemed.analysis.pipeline import run_analysis
from glidemed.simulate import simulate_responses
from glidemed.study import load_study

pytestmark = pytest.mark.slow  # whole analyses

PAPER = json.loads((ROOT / "surveys" / "kather2022" / "published" / "paper_results.json")
                   .read_text(encoding="utf-8"))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def kather(kather_xlsx, tmp_path_factory):
    """The published ratings analysed as `make reproduce` does, with a small bootstrap."""
    out = tmp_path_factory.mktemp("kather") / "analysis"
    summary = run_analysis(load_study("kather2022"), ratings=kather_xlsx, out_dir=out,
                           nonsensical="paper", n_boot=100)
    html = (out / "report.html").read_text(encoding="utf-8")
    return out, summary, BeautifulSoup(html, "html.parser")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    study = load_study(ROOT / "surveys" / "demo" / "study.toml")
    key = make_key(study)
    folder = tmp_path_factory.mktemp("simulated")
    simulate_responses(study, key, 3, folder, seed=3)
    out = tmp_path_factory.mktemp("simulated-analysis") / "analysis"
    summary = run_analysis(study, [folder], out, key=key, n_boot=20)
    return out, summary, BeautifulSoup((out / "report.html").read_text(encoding="utf-8"),
                                       "html.parser")


def svg_texts(path: Path) -> list[tuple[str, float]]:
    """Every text of an SVG figure with its font size (in points at print size)."""
    root = ET.parse(path).getroot()
    out = []
    for element in root.iter(f"{SVG}text"):
        style = element.get("style", "")
        size = re.search(r"font-size:\s*([\d.]+)px", style)
        out.append(("".join(element.itertext()), float(size.group(1)) if size else 0.0))
    return out


# --- results first ---------------------------------------------------------------------------

def test_key_results_lead_with_medians_and_radiology_against_the_rest(kather):
    out, summary, soup = kather
    body = soup.find("main")
    first = body.find(True)
    assert first.get("id") == "key-results"  # nothing before the answer
    findings = [li.get_text(" ", strip=True) for li in first.find_all("li")]
    radiology = [f for f in findings if f.startswith("Radiology styles scored lower than the rest")]
    assert len(radiology) == 2  # style and content
    tests = pd.DataFrame(summary["tests"])
    group = tests[(tests["unit"] == "prompt_median") & (tests["test"] == "mannwhitney_group")]
    for finding, row in zip(radiology, group.itertuples()):
        assert f"Cliff's δ = {row.effect_size:.2f}" in finding and "p < 0.001" in finding
    table = first.find(id="table-key-medians")
    rows = {tr.find_all("td")[0].get_text(): [td.get_text() for td in tr.find_all("td")[1:]]
            for tr in table.find("tbody").find_all("tr")}
    study = load_study("kather2022")
    assert list(rows) == [s.label for s in study.styles]  # labels, in the study's order
    for aspect, published in PAPER["medians"].items():
        column = [th.get_text() for th in table.find_all("th")].index(
            f"{aspect.capitalize()} score") - 1
        got = [float(rows[s.label][column].split(" ")[0]) for s in study.styles]
        assert got == published
    # the same findings in summary.json, with their numbers
    assert [k["text"] for k in summary["key_results"]] == findings
    assert summary["key_results"][0]["p"] == group.iloc[0]["p"]


@pytest.mark.browser
def test_first_screen_at_1280x800_holds_the_key_results(kather, browser):
    out, _, _ = kather
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto((out / "report.html").as_uri())
    box = page.locator("#key-results").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 800, box
    text = page.locator("#key-results").inner_text()
    assert "Radiology styles scored lower than the rest" in text and "X-ray" in text
    # no table, figure or page is wider than the window: nothing scrolls sideways
    wide = page.evaluate("""() => [...document.querySelectorAll('table, figure, img')]
        .filter(e => e.getBoundingClientRect().right > innerWidth || e.scrollWidth > e.clientWidth + 1)
        .map(e => e.id || e.tagName)""")
    assert wide == [] and page.evaluate("document.documentElement.scrollWidth") <= 1280
    # and no word is broken to make a table fit: a one-word cell stays on one line
    broken = broken_words(page)
    assert broken == [], broken[:5]
    # printed: A4 pages, no figure or table split across two
    page.emulate_media(media="print")
    assert page.evaluate("""() => [...document.querySelectorAll('figure, table')]
        .every(e => getComputedStyle(e).breakInside === 'avoid')""")
    page.close()


# --- figures ---------------------------------------------------------------------------------

def test_figures_carry_the_studys_labels_at_print_size(kather):
    out, _, _ = kather
    study = load_study("kather2022")
    for name in ("style_medians", "distribution", "pairwise_p", "rater_agreement"):
        texts = svg_texts(out / "figures" / f"{name}.svg")
        words = [t for t, _ in texts]
        assert texts and min(size for _, size in texts) >= 8, (name, texts)
        assert not {s.key for s in study.styles if s.key != s.label.lower()} & set(words), name
        root = ET.parse(out / "figures" / f"{name}.svg").getroot()
        width_mm = float(root.get("width").removesuffix("pt")) / 72 * 25.4
        assert min(abs(width_mm - 89), abs(width_mm - 183)) < 0.5, (name, width_mm)
        pdf = (out / "figures" / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf and b"/Type3" not in pdf
        assert (out / "figures" / f"{name}.csv").is_file()
    medians = [t for t, _ in svg_texts(out / "figures" / "style_medians.svg")]
    assert {"X-ray", "MRI", "CT", "Style", "Content", "Radiology vs rest: ***",
            "GLIDE, CLIP guidance", "bars: bootstrap 95% CI"} <= set(medians)


def test_figure_numbers_are_written_beside_it(kather):
    out, _, _ = kather
    shown = pd.read_csv(out / "figures" / "style_medians.csv")
    study = load_study("kather2022")
    for aspect, published in PAPER["medians"].items():
        part = shown[shown["aspect"] == aspect].set_index("style")
        assert [part.at[s.key, "median"] for s in study.styles] == published
        assert (part["ci_low"] <= part["median"]).all() and (part["median"] <= part["ci_high"]).all()
    cells = pd.read_csv(out / "figures" / "pairwise_p.csv")
    pairwise = pd.read_csv(out / "pairwise.csv")
    mine = pairwise[pairwise["unit"] == "prompt_median"].reset_index(drop=True)
    assert cells["p"].tolist() == pytest.approx(mine["p_mw_holm"].tolist())


def test_figure_files_are_reproducible_and_text_stays_text(kather):
    out, _, _ = kather
    study = load_study("kather2022")
    ratings = pd.read_csv(out / "ratings.csv", keep_default_na=False, na_values=[""])
    medians = pd.read_csv(out / "prompt_medians.csv")
    pairwise = pd.read_csv(out / "pairwise.csv")
    twice = [ratings_figures(ratings, medians, pairwise, None, None, Labels.of(study))
             for _ in range(2)]
    for name in twice[0]:
        assert twice[0][name].files == twice[1][name].files, name
    figure, _ = distribution_figure(ratings, Labels.of(study))
    for ax in figure.axes:  # the study's first style on top in every panel
        bottom, top = ax.get_ylim()
        assert bottom > top and ax.get_yticks()[0] == 0
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == [s.label for s in study.styles]
    svg = twice[0]["style_medians"].files["svg"].decode()
    assert "Histopathology</text>" in svg or ">Histopathology<" in svg


# --- tables ----------------------------------------------------------------------------------

def test_tables_in_words_and_a_data_dictionary(kather):
    out, _, soup = kather
    model = soup.find(id="table-model-1")
    headings = [th.get_text() for th in model.find_all("th")]
    assert "Odds ratio" in headings and "odds_ratio" not in headings
    terms = [tr.find_all("td")[headings.index("Term")].get_text() for tr in model.find("tbody").find_all("tr")]
    assert "Style: X-ray vs Microscopy" in terms and "Threshold 0|1" in terms
    assert not any("[T." in t for t in terms)
    latex = (out / "ordinal.tex").read_text()
    assert "Odds ratio" in latex and "Style: X-ray vs Microscopy" in latex
    dictionary = pd.read_csv(out / "columns.csv", keep_default_na=False)
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.csv")} - {"columns.csv"}
    assert set(dictionary["file"]) == written
    for file in written:
        header = list(pd.read_csv(out / file, nrows=0).columns)
        assert dictionary.loc[dictionary["file"] == file, "column"].tolist() == header, file
    missing = dictionary[(dictionary["meaning"] == "") | (dictionary["heading"] == "")]
    assert missing.empty, missing.to_string()


# --- methods ---------------------------------------------------------------------------------

def test_methods_paragraph_equals_the_summary(kather):
    out, summary, soup = kather
    methods = (out / "methods.md").read_text(encoding="utf-8")
    counts, design, options = summary["counts"], summary["design"], summary["options"]
    assert f"The study comprised {design['prompts']} prompts: {design['topics']} topics in " \
           f"{len(design['styles'])} styles" in methods
    assert f"{counts['raters']} raters rated {counts['panels']} panels; " \
           f"{counts['usable_ratings']} of {counts['ratings']} ratings were analysed; excluded: " + \
           ", ".join(f"{k} {v}" for k, v in counts["exclusions"].items()) in methods
    assert f"({options['bootstrap']} resamples, seed {options['seed']})" in methods
    for finding in summary["key_results"]:
        assert finding["text"] in methods
    for model in summary["models"]:
        if model["role"] == "primary":
            assert f"{model['aspect']}: {model['model']} model {model['formula']} (n = {model['n']})" in methods
    versions = summary["versions"]
    assert f"glidemed {versions['glidemed']} (Python {versions['python']};" in methods
    assert "Owen AB. The pigeonhole bootstrap" in methods and "response JSON Schema" not in methods
    # and the report shows the same paragraphs
    shown = [p.get_text() for p in soup.find(id="methods").find_next_siblings("p")]
    body = [p for p in methods.split("\n\n")[1:] if not p.startswith("#")]
    assert all(p.strip() in shown for p in body[:-2]), (body, shown)


# --- simulated data --------------------------------------------------------------------------

def broken_words(page) -> list[str]:
    """One-word cells that a table broke over two lines to fit."""
    return page.evaluate("""() => [...document.querySelectorAll('td, th')]
        .filter(c => !/\\s/.test(c.textContent.trim()) && c.textContent.trim().length > 0)
        .filter(c => { const r = document.createRange(); r.selectNodeContents(c);
                       return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size > 1; })
        .map(c => c.textContent)""")


@pytest.mark.browser
def test_simulated_data_are_named_on_the_first_screen(simulated, browser):
    out, summary, soup = simulated
    assert summary["simulated_files"] == 3
    assert soup.find("h1").get_text().endswith("(simulated responses)")
    assert soup.find("title").get_text().startswith(soup.find("h1").get_text())
    captions = [c.get_text() for c in soup.find_all("figcaption")]
    assert captions and all(c.startswith("Simulated data.") for c in captions)
    assert (out / "methods.md").read_text().splitlines()[2].startswith("**Simulated data**")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto((out / "report.html").as_uri())
    box = page.locator("#simulated-banner").bounding_box()
    assert box["y"] + box["height"] <= 800 and "simulate" in page.locator("#simulated-banner").inner_text()
    assert broken_words(page) == [] and page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.close()


def test_real_responses_have_no_banner(kather):
    _, summary, soup = kather
    assert summary["simulated_files"] == 0 and soup.find(id="simulated-banner") is None


# --- accessibility ---------------------------------------------------------------------------

@pytest.mark.browser
def test_report_passes_axe(kather, simulated, browser, axe_source):
    for out, _, _ in (kather, simulated):
        context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto((out / "report.html").as_uri())
        assert violations(page, axe_source) == [], out
        context.close()
