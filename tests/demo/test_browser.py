"""The Gradio demo driven in headless Chromium (Debian's ``chromium`` through Playwright) on a tiny random model.

Skipped when Chromium or Playwright is missing. The server listens on 127.0.0.1 only; the browser runs without
network services. Screenshots go to ``test-artifacts/`` (git-ignored); ``demo_result.png`` - the example picture
and two example sounds, detected - is the README's ``docs/demo.png``: run this test with
``AUDIODETIC_WRITE_DOCS_SCREENSHOT=1`` to write it there too.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from demo_clients import free_port
from surfaces_fixtures import shared_tiny_model
from upload_media import text_file

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("gradio")
    from audiodetic.demo.backend import DemoBackend
    from audiodetic.demo.launch import start
    from audiodetic.demo.page import build_demo

    model = shared_tiny_model(0)
    backend = DemoBackend({model.name: model})  # the default limits, as the README's screenshot shows them
    demo = build_demo(backend, examples=True)
    url = start(demo, host="127.0.0.1", port=free_port(), max_file_size=backend.limits.max_bytes)
    try:
        yield url, model, backend
    finally:
        demo.close()
        backend.close()


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=120_000)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        page = context.new_page()
        page.set_default_timeout(120_000)
        yield page
        browser.close()


def _threshold_showing_both(detections, names, most: int = 8) -> float:
    """A threshold (2 decimals) just below the score of the first detection by which every name has appeared,
    keeping at least 5 and at most ``most`` detections where the scores allow."""
    ordered = detections.sorted_by_score()
    labels = list(ordered.labels)
    needed = max(labels.index(name) for name in names) + 1
    keep = min(max(needed, 5), max(most, needed), len(labels))
    return float(np.floor(float(ordered.scores[keep - 1]) * 100) / 100 - 0.01)


def _toast(page, text: str):
    return page.locator(".toast-body", has_text=text).first


def test_detect_on_the_example_then_bad_uploads_get_messages(server, page, tmp_path) -> None:
    from playwright.sync_api import expect

    from audiodetic.demo.media import example_dir

    url, model, backend = server
    folder = example_dir()
    picture, sounds = folder / "scene.png", [folder / "siren.wav", folder / "engine.wav"]
    ARTIFACTS.mkdir(exist_ok=True)
    # what the page must show: the same model through the Python API, both sounds above the threshold
    expected = model.detect(picture, {"siren": sounds[0], "engine": sounds[1]}, score_threshold=0.0)
    threshold = _threshold_showing_both(expected, ["siren", "engine"])
    shown = expected.above(threshold).sorted_by_score()
    assert {"siren", "engine"} <= set(shown.labels)

    page.goto(url)
    page.locator("#detect-button").wait_for()
    page.locator("#input-image input[type=file]").set_input_files(str(picture))
    page.locator("#input-image img").first.wait_for()
    page.locator("#sound-files input[type=file]").set_input_files([str(p) for p in sounds])
    expect(page.locator("#sound-names")).to_contain_text("engine.wav")
    page.locator("#threshold input[type=number]").fill(f"{threshold:.2f}")
    page.locator("#threshold input[type=number]").press("Enter")
    page.locator("#detect-button").click()

    annotated = page.locator("#annotated img").first
    annotated.wait_for()
    table = page.locator("#results-table")
    expect(table).to_contain_text(str(round(float(shown.scores[0]), 3)))
    expect(table).to_contain_text("engine")
    assert annotated.evaluate("img => img.naturalWidth") == 320
    text = table.inner_text()
    assert all(str(round(float(score), 3)) in text for score in shown.scores), (text[:400], shown.scores)
    expect(page.locator("#json-file a").first).to_have_attribute("href", re.compile(r"\.json$"))
    expect(page.locator(".toast-body")).to_have_count(0)  # a clean result, no message over it
    page.wait_for_timeout(500)  # let the drawing finish fading in
    page.screenshot(path=str(ARTIFACTS / "demo_result.png"), full_page=True)
    if os.environ.get("AUDIODETIC_WRITE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "demo_result.png", ROOT / "docs" / "demo.png")
    assert len(backend.sessions) == 1

    # a text file named .wav: a message naming it, and the page keeps working
    page.locator("#sound-files input[type=file]").set_input_files(str(text_file(tmp_path / "notes.wav")))
    expect(page.locator("#sound-names")).to_contain_text("notes.wav")
    page.locator("#detect-button").click()
    expect(_toast(page, "notes.wav")).to_contain_text("cannot decode audio")

    # a file over the upload limit is stopped in the browser, with the limit in the message
    big = tmp_path / "big.wav"
    with open(big, "wb") as handle:  # sparse: 50 MB + 1 byte that take no disk
        handle.truncate(backend.limits.max_bytes + 1)
    page.locator("#sound-files input[type=file]").set_input_files(str(big))
    expect(_toast(page, "big.wav")).to_contain_text(re.compile(r"maximum allowed size of 50\.0 MB", re.IGNORECASE))
    page.screenshot(path=str(ARTIFACTS / "demo_bad_uploads.png"), full_page=True)

    # leaving the page ends the session: its encoding is dropped; a fresh page asks for a picture first
    page.goto(url)
    page.locator("#detect-button").wait_for()
    for _ in range(100):
        if not len(backend.sessions):
            break
        page.wait_for_timeout(100)
    assert len(backend.sessions) == 0, "the closed session's encoding is still held"
    page.locator("#detect-button").click()
    expect(_toast(page, "Add an image first")).to_be_visible()

    # a text file named .png as the picture
    page.locator("#input-image input[type=file]").set_input_files(str(text_file(tmp_path / "notes.png")))
    page.locator("#input-image img").first.wait_for(state="attached")
    page.locator("#sound-files input[type=file]").set_input_files(str(sounds[0]))
    expect(page.locator("#sound-names")).to_contain_text("siren.wav")
    page.locator("#detect-button").click()
    expect(_toast(page, "notes.png")).to_contain_text("cannot read notes.png as an image")
    page.screenshot(path=str(ARTIFACTS / "demo_not_a_picture.png"), full_page=True)
