"""The HTML report: self-contained, every section present, hostile text inert (bs4, Chromium)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import sync_playwright

from glidemed.analysis.pipeline import run_analysis
from glidemed.study import load_study
from response_factory import make_key, make_response, write_json
from survey_factory import ARGS, CHROMIUM, require_chromium

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY, repeat_panels=2)
# Each payload sets window.__pwned if any script it carries ever runs.
PAYLOADS = [
    "<script>window.__pwned = 'script'</script>",
    '<img src=x onerror="window.__pwned = \'img\'">',
    '"><svg onload="window.__pwned = \'svg\'"></svg>',
    "</td></tr></table><script>window.__pwned = 'break-out'</script>",
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    "{{ 7 * 7 }} {% raw %} $x^2$",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("responses")
    raters = ["dr $one_{", "<b onmouseover=\"window.__pwned='rater'\">dr-two</b>",
              "<script>window.__pwned='rater-id'</script>"]
    for i, rater in enumerate(raters):
        response = make_response(STUDY, KEY, rater, seed=i, comment=PAYLOADS[i],
                                 profile={"specialty": "pathology", "years": PAYLOADS[i + 3]})
        write_json(folder / f"r{i}.json", response)
    (folder / "bad.json").write_text('{"schema": "<script>window.__pwned=1</script>"}')
    out = tmp_path_factory.mktemp("analysis") / "analysis"
    summary = run_analysis(STUDY, [folder], out, key=KEY, n_boot=50, seed=1)
    html = (out / "report.html").read_text(encoding="utf-8")
    return out, summary, html, BeautifulSoup(html, "html.parser")


def test_no_script_or_handler_in_the_page(report):
    _, _, _, soup = report
    assert soup.find_all(["script", "iframe", "svg", "object", "embed", "link", "b"]) == []
    for tag in soup.find_all(True):
        assert not any(attr.lower().startswith("on") for attr in tag.attrs), tag


def test_hostile_text_is_shown_as_text(report):
    _, _, _, soup = report
    comments = soup.find(id="table-comments").get_text()
    for payload in PAYLOADS[:3]:
        assert payload in comments
    ledger = soup.find(id="table-ledger").get_text()
    assert "<script>window.__pwned='rater-id'</script>" in ledger
    assert "schema is '<script>window.__pwned=1</script>'" in ledger


def test_content_security_policy_forbids_scripts(report):
    _, _, _, soup = report
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
    assert csp is not None and "default-src 'none'" in csp["content"]
    assert "script-src" not in csp["content"]


def test_self_contained_with_figures(report):
    out, _, _, soup = report
    images = soup.find_all("img")
    assert len(images) == 4
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("distribution", "pairwise_p", "style_medians", "rater_agreement"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert not soup.find_all(href=True)


def test_sections_counts_and_methods(report):
    _, summary, _, soup = report
    for section in ("counts", "methods", "figures", "descriptives", "tests", "models",
                    "reliability", "ledger", "comments"):
        assert soup.find(id=section) is not None, section
    counts = soup.find("dl", class_="counts").get_text(" ")
    assert "3 accepted, 1 rejected" in counts
    assert f"{summary['counts']['usable_ratings']}" in counts
    methods = soup.find(id="methods").find_next_siblings("p")
    software = next(p.get_text() for p in methods if p.get_text().startswith("Software:"))
    for name in ("glidemed", "python", "scipy", "statsmodels", "scikit-posthocs", "krippendorff"):
        assert name in software


def test_mixed_model_is_primary_with_three_raters(report):
    _, summary, _, soup = report
    text = soup.find(id="models").find_next_sibling("p").get_text()
    assert "with 3 raters (at least 3), a cumulative logit mixed model" in text
    roles = {(m["role"], m["model"], m["aspect"]) for m in summary["models"]}
    assert {("primary", "mixed", "style"), ("sensitivity", "fixed", "style"),
            ("primary", "mixed", "content"), ("sensitivity", "fixed", "content")} <= roles
    headings = [h.get_text() for h in soup.find_all("h3")]
    assert "primary: mixed model, Style" in headings


def test_tables_match_csv(report):
    out, _, _, soup = report
    import pandas as pd

    tests = pd.read_csv(out / "tests.csv")
    rows = soup.find(id="table-tests").find("tbody").find_all("tr")
    assert len(rows) == min(len(tests), 500)
    first = [td.get_text() for td in rows[0].find_all("td")]
    row = tests.iloc[0]
    # the CSV's machine names in words: unit, aspect and condition by the study's labels
    assert row["unit"] == "prompt_median" and first[0] == "per-prompt median"
    assert first[1] == next(a.label for a in STUDY.aspects if a.key == row["aspect"])
    assert first[2] == next(c.label for c in STUDY.conditions if c.name == row["condition"])
    assert (row["test"], first[3]) == ("kruskal", "Kruskal-Wallis")
    headings = [th.get_text() for th in soup.find(id="table-tests").find_all("th")]
    assert headings[:4] == ["Unit", "Aspect", "Condition", "Test"]


@pytest.mark.browser
def test_no_script_runs_in_chromium(report):
    require_chromium()

    out, _, _, _ = report
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            # hover and click everything a rater wrote, in case a handler slipped through
            for cell in page.query_selector_all("td.text")[:50]:
                cell.hover()
            pwned = page.evaluate("() => window.__pwned === undefined ? null : String(window.__pwned)")
            scripts = page.evaluate("() => document.scripts.length")
            text = page.inner_text("#table-comments")
        finally:
            browser.close()
    assert pwned is None and dialogs == [] and scripts == 0
    assert PAYLOADS[0] in text


def test_summary_is_strict_json(report):
    out, summary, _, _ = report
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == json.loads(json.dumps(summary))
