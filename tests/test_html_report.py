"""The HTML report: ``snakemake --report`` on a small finished run, opened in headless Chromium.

One run of the workflow (one model, CPU and an absent GPU, 3 synthetic images), then its report:
the report's data gives every figure its own caption, category and labels, and the page, driven
in Chromium through its own menu, lists every figure and shows one as a real chart.
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from docutils.core import publish_parts
from helpers import REPO, copy_workflow, snakemake
from jinja2 import Environment
from PIL import Image
from snakemake.utils import validate

from detbench.report import html as report_html
from detbench.report.captions import FIGURES
from detbench.report.html import FIGURE_REPORT

SMALL = {
    "name": "html",
    "voc": {"synthetic": {"images": 3, "seed": 5}},
    "models": ["ssd_512_mobilenet1.0_voc"],
    "weights": {"source": "untrained", "seed": 0},
    "devices": ["cpu", "gpu0"],
    "speed": {"images": 1, "size": 320, "modes": ["hybrid"], "warmup": 1},
    "voc_run": {"batch": 3, "warmup": 1},
    "telemetry": {"interval_s": 0.05},
}
OTHER_CATEGORIES = {"Summary", "Detections", "Backends"}
CATEGORIES = sorted({entry[0] for entry in FIGURE_REPORT.values()} | OTHER_CATEGORIES)
# The rows of the categories that hold no comparison figure: the summary and the pictures.
OTHER_ROWS = {
    "Summary": [["every run (summary.csv)"]],
    "Detections": [["ssd_512_mobilenet1.0_voc", "detections on fixed photos"]],
    "Backends": [
        ["model x backend x device (backends.csv)"],
        ["throughput, latency, mAP per backend"],
    ],
}
# Tables filed beside a category's figures.
TABLE_ROWS = {"Speed": [["Imperative vs hybrid against the noise (modes.csv)", "speed"]]}
SHOWN = "speed_cpu_vs_gpu"  # the figure the driven page opens: a CPU bar beside a failed GPU run
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--window-size=1400,1000", "--hide-scrollbars",
]  # fmt: skip
# Appended to a copy of the report: click through the report's own menu, one category after the
# other, record each category's table, then open SHOWN's description and its image.
DRIVER = """
<script>
(async function () {
  const pause = () => new Promise((done) => setTimeout(done, 250));
  const nav = () => document.querySelector("nav");
  const link = (text) => Array.from(nav().querySelectorAll("a"))
    .find((a) => a.textContent.trim() === text);
  const home = () => nav().querySelector("ol a");
  const rows = () => Array.from(nav().querySelectorAll("tbody tr"))
    .map((tr) => Array.from(tr.cells).map((td) => td.textContent.trim()));
  const probe = {categories: {}};
  try {
    await pause();
    for (const category of %(categories)s) {
      home() && home().click();
      await pause();
      link(category).click();
      await pause();
      probe.categories[category] = rows();
    }
    home().click();
    await pause();
    link(%(category)s).click();
    await pause();
    const row = Array.from(nav().querySelectorAll("tbody tr"))
      .find((tr) => tr.textContent.includes(%(title)s));
    const buttons = row.querySelectorAll("a");
    buttons[buttons.length - 1].click();
    await pause();
    nav().querySelector("table a").click();
    await pause();
  } catch (error) {
    probe.error = String(error);
  }
  const out = document.createElement("pre");
  out.id = "detbench-probe";
  out.hidden = true;
  out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
})();
</script>
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A finished small run and ``report.html`` made from it by ``snakemake --report``."""
    workdir = copy_workflow(tmp_path_factory.mktemp("report"), SMALL, "small.yaml")
    done = snakemake(workdir, "all", "--configfile", "small.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    made = snakemake(workdir, "--report", "report.html", "--configfile", "small.yaml")
    assert made.returncode == 0, made.stderr[-4000:]
    return workdir / "report.html"


def browse(chromium: str, page: Path, out: Path, *action: str) -> subprocess.CompletedProcess:
    profile = out / f"profile-{len(list(out.glob('profile-*')))}"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def report_data(report: Path, name: str) -> dict:
    """The JSON the report's page is built from (``var <name> = {...};``)."""
    match = re.search(rf"var {name} = (\{{.*?\}});\n", report.read_text(), re.DOTALL)
    assert match, f"no `var {name}` in {report}"
    return json.loads(match.group(1))


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def visible_dom(dom: str) -> str:
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.DOTALL)


@pytest.fixture(scope="module")
def driven(report, chromium, tmp_path_factory) -> tuple[str, Path]:
    """The report clicked through in Chromium: its DOM afterwards and a screenshot."""
    out = tmp_path_factory.mktemp("chromium")
    category, title, _ = FIGURE_REPORT[SHOWN]
    script = DRIVER % {
        "categories": json.dumps(CATEGORIES),
        "category": json.dumps(category),
        "title": json.dumps(title),
    }
    page = out / "driven.html"
    head, body_end, tail = report.read_text().rpartition("</body>")  # the last: vega's JS has one
    page.write_text(head + script + body_end + tail)
    dom = browse(chromium, page, out, "--dump-dom").stdout
    browse(chromium, page, out, f"--screenshot={out / 'shot.png'}")
    return dom, out / "shot.png"


def render_caption(template: str, config: dict, key: str | None = None) -> str:
    """A caption as ``snakemake --report`` makes it: Jinja2 on the .rst, then docutils to HTML."""
    config = json.loads(json.dumps(config))
    validate(config, str(REPO / "config/schema.yaml"))  # fills in the schema's defaults
    wildcards = SimpleNamespace(figure=key)
    params = SimpleNamespace(
        caption=key and report_html.caption(wildcards),
        experiment=key and report_html.experiment(wildcards),
    )
    snakemake_object = SimpleNamespace(config=config, params=params, wildcards=wildcards)
    links = "".join(f"\n.. _{name}: javascript:app.showCategory('{name}')" for name in CATEGORIES)
    text = (REPO / "report" / template).read_text() + links  # Snakemake appends such links
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text)
    body = publish_parts(rst.render(snakemake=snakemake_object), writer="html")["body"]
    assert "System Message" not in body, body
    return text_of(body)


def test_every_figure_key_has_a_report_entry_and_matches_the_wildcard():
    assert set(FIGURE_REPORT) == set(FIGURES)
    for key in FIGURES:
        assert re.fullmatch(report_html.FIGURE_PATTERN, key)
    assert not re.fullmatch(report_html.FIGURE_PATTERN, "voc_fps_copy")


def test_unknown_figure_key_is_an_error_naming_the_keys():
    with pytest.raises(KeyError, match="expected a figure key in .*voc_fps"):
        report_html.category(SimpleNamespace(figure="fps"))


@pytest.mark.parametrize("config_file", ["config/config.yaml", "config/demo.yaml"])
def test_captions_warn_about_untrained_weights_only_when_untrained(config_file):
    config = yaml.safe_load((REPO / config_file).read_text())
    untrained = config_file.endswith("demo.yaml")
    for template, key in [("figure.rst", "voc_map"), ("figure.rst", "speed_modes_gpu"),
                          ("summary.rst", None), ("workflow.rst", None)]:  # fmt: skip
        caption = render_caption(template, config, key)
        assert ("Untrained weights" in caption) == untrained, (template, caption)
    voc = render_caption("figure.rst", config, "voc_fps")
    assert ("every image of PASCAL VOC2007 test," in voc) == (not untrained)


def test_one_untrained_model_is_enough_for_the_warning():
    config = {"models": ["ssd_512_mobilenet1.0_voc"], "weights": {"source": "gluoncv"}}
    assert "Untrained weights" not in render_caption("figure.rst", config, "voc_map")
    config["models"].append("yolo3_mobilenet1.0_voc")
    config["weights"]["per_model"] = {"ssd_512_mobilenet1.0_voc": "untrained"}
    caption = render_caption("figure.rst", config, "voc_map")
    assert "Untrained weights" in caption
    assert "the mAP and AP of ssd_512_mobilenet1.0_voc mean nothing" in caption


def test_every_figure_has_its_own_caption_category_and_labels(report):
    results = report_data(report, "results")
    for key, (_, title, experiment) in FIGURE_REPORT.items():
        entry = results[f"reports/html/figures/{key}.png"]
        caption = text_of(entry["caption"])
        assert " ".join(FIGURES[key].split()) in caption
        assert "Untrained weights" in caption and "run html" in caption
        assert entry["labels"] == {"figure": title, "runs": experiment}
        assert entry["mime_type"] == "image/png"
    categories = report_data(report, "categories")
    assert sorted(categories) == CATEGORIES
    for key, (category, _, _) in FIGURE_REPORT.items():
        assert f"reports/html/figures/{key}.png" in str(categories[category])
    summary = results["reports/html/summary.csv"]
    assert "Summary" in categories and "one row per run" in text_of(summary["caption"])
    picture = results["reports/html/detections/ssd_512_mobilenet1.0_voc.png"]
    assert picture["labels"] == {"model": "ssd_512_mobilenet1.0_voc",
                                 "figure": "detections on fixed photos"}  # fmt: skip
    caption = text_of(picture["caption"])
    assert "Untrained weights" in caption and "first three photos of the split" in caption


def test_captions_say_how_each_experiment_was_measured(report):
    results = report_data(report, "results")
    speed = text_of(results["reports/html/figures/latency_distribution.png"]["caption"])
    voc = text_of(results["reports/html/figures/voc_fps.png"]["caption"])
    assert "Speed runs: 1 image sampled" in speed and "input 320x320 pixels" in speed
    assert "every image of a synthetic VOC-format set of 3 images" in voc and "batch 3," in voc
    assert "every 0.05 s" in speed and "every 0.05 s" in voc


def test_opened_report_lists_the_categories(report, chromium, tmp_path):
    dom = visible_dom(browse(chromium, report, tmp_path, "--dump-dom").stdout)
    menu = text_of(dom)
    for category in CATEGORIES:
        assert f">{category}</span>" in dom
    assert "detbench: html" in menu and "Untrained weights" in menu


def test_every_category_lists_its_figures_in_the_page(driven):
    dom, _ = driven
    found = re.search(r'<pre id="detbench-probe" hidden="">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the driver script did not finish"
    probe = json.loads(html.unescape(found.group(1)))
    assert "error" not in probe, probe.get("error")
    for category in CATEGORIES:
        expected = sorted(
            [[title, runs] for cat, title, runs in FIGURE_REPORT.values() if cat == category]
            + TABLE_ROWS.get(category, [])
        ) or OTHER_ROWS[category]
        assert sorted(row[: len(expected[0])] for row in probe["categories"][category]) == expected


def test_a_figure_opens_as_its_png_with_its_caption(report, driven):
    dom, _ = driven
    dom = visible_dom(dom)
    images = re.findall(r'<img src="data:image/png;[^",]*base64,([^"]+)"', dom)
    drawn = (report.parent / f"reports/html/figures/{SHOWN}.png").read_bytes()
    assert drawn in [base64.b64decode(data) for data in images]
    assert " ".join(FIGURES[SHOWN].split()[:12]) in text_of(dom)


def test_screenshot_shows_the_chart(report, driven):
    _, shot = driven
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1000, 1400)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500 and pixels.std() > 20
    figure = np.asarray(
        Image.open(report.parent / f"reports/html/figures/{SHOWN}.png").convert("RGB")
    )
    colours, counts = np.unique(figure.reshape(-1, 3), axis=0, return_counts=True)
    vivid = colours[(np.ptp(colours, axis=1) > 60) & (counts > 1000)].astype(int)
    assert len(vivid), "the figure has no coloured marks to look for"
    content = pixels[:, 600:]  # right of the navigation panel
    for colour in vivid:  # each mark's colour fills part of the page, as drawn in the PNG
        assert (np.abs(content - colour).max(axis=2) <= 3).sum() > 500, colour
