"""The Gradio demo driven in headless Chromium (Debian's ``chromium`` through Playwright) on a tiny random model.

Skipped when Chromium or Playwright is missing. The server listens on 127.0.0.1 only; the browser runs without
network services. Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from surfaces_fixtures import scene, shared_tiny_model, write_tone  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("gradio")
    from audiodetic.demo.page import build_demo

    model = shared_tiny_model(0)
    demo = build_demo(model, examples=True)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                ssr_mode=False, show_error=True)
    try:
        yield f"http://127.0.0.1:{port}/", model
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=120_000)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1300})
        page = context.new_page()
        page.set_default_timeout(120_000)
        yield page
        browser.close()


def test_upload_image_and_sound_then_detect(server, page, tmp_path) -> None:
    from PIL import Image
    from playwright.sync_api import expect

    image_path = tmp_path / "street.png"
    Image.fromarray(scene(240, 320, seed=2)).save(image_path)
    siren = write_tone(tmp_path / "siren.wav", 1000.0)
    ARTIFACTS.mkdir(exist_ok=True)

    url, model = server
    # what the page must show: the same model through the Python API; threshold just below the 5th best score
    expected = model.detect(image_path, [siren], score_threshold=0.0).sorted_by_score()
    assert len(expected) >= 5
    threshold = np.floor(float(expected.scores[4]) * 100) / 100 - 0.01
    shown = expected.above(threshold)
    page.goto(url)
    page.locator("#detect-button").wait_for()
    # error case first: no image -> a message in the page, and the app keeps serving
    page.locator("#detect-button").click()
    expect(page.locator(".toast-body").first).to_contain_text("Add an image first")
    page.screenshot(path=str(ARTIFACTS / "demo_error.png"), full_page=True)

    page.locator("#input-image input[type=file]").set_input_files(str(image_path))
    page.locator("#input-image img").first.wait_for()
    page.locator("#sound-files input[type=file]").set_input_files(str(siren))
    expect(page.locator("#sound-names")).to_contain_text("siren.wav")
    page.locator("#threshold input[type=number]").fill(f"{threshold:.2f}")
    page.locator("#threshold input[type=number]").press("Enter")
    page.locator("#detect-button").click()

    annotated = page.locator("#annotated img").first
    annotated.wait_for()
    table = page.locator("#results-table")
    expect(table).to_contain_text("siren")
    expect(table).to_contain_text(str(round(float(shown.scores[0]), 3)))
    assert annotated.evaluate("img => img.naturalWidth") == 320
    text = table.inner_text()
    assert all(str(round(float(score), 3)) in text for score in shown.scores[:3]), (text[:400], shown.scores[:5])
    link = page.locator("#json-file a").first
    expect(link).to_have_attribute("href", re.compile(r"detections\.json$"))
    page.screenshot(path=str(ARTIFACTS / "demo_result.png"), full_page=True)

    # a sound that cannot be decoded: an error message, then the page still works
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    page.locator("#sound-files input[type=file]").set_input_files(str(broken))
    expect(page.locator("#sound-names")).to_contain_text("broken.wav")
    page.locator("#detect-button").click()
    expect(page.locator(".toast-body").last).to_contain_text("broken.wav")
    page.screenshot(path=str(ARTIFACTS / "demo_bad_sound.png"), full_page=True)
