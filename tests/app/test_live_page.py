"""Live page in Chromium: a fake camera whose face changes expression part-way, streamed over WebRTC to a real
`streamlit run` server; the page boxes the face and its voice follows the change.

With EMOVOICE_UPDATE_SCREENSHOTS=1 the screenshot is also copied to docs/screenshots/live.png.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from support.photos import HAPPY_FACE, PROJECT_ROOT, SAMPLE_ZIP, SURPRISED_FACE, portrait
from support.server import cpu_seconds, start_streamlit, stop_streamlit

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
CAMERA_FPS = 25  # a webcam's usual rate, so the page's own rate, not the camera's, is what gets measured
SEGMENT_S = 6  # each expression this long: the voice needs 2 s of it, after the stream has connected
WAIT_MS = 60_000  # the first frame loads TensorFlow and the model in the server, on 2 busy cores
FRAMES = re.compile(r"([\d.]+) frames a second · faces read ([\d.]+) times a second")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def write_y4m(path: Path, segments: list[tuple[np.ndarray, float]], fps: int) -> None:
    """(RGB 640x480 picture, seconds) -> an uncompressed Y4M video, the format Chromium's fake camera plays."""
    height, width = segments[0][0].shape[:2]
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture, seconds in segments:
            planes = cv2.cvtColor(picture, cv2.COLOR_RGB2YUV_I420).tobytes()  # Y, then U and V at quarter size
            for _ in range(round(seconds * fps)):
                video.write(b"FRAME\n" + planes)


@pytest.fixture(scope="module")
def expressions() -> list[str]:
    """The emotions the model gives the camera's two faces, in the order the camera shows them."""
    from core.recognise import load_classifier, recognise

    classifier = load_classifier()
    return [recognise(classifier, picture).main_face.emotion for picture, _ in camera_segments()]


def camera_segments() -> list[tuple[np.ndarray, float]]:
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        return [(portrait(archive.read(face)), SEGMENT_S) for face in (HAPPY_FACE, SURPRISED_FACE)]


@pytest.fixture(scope="module")
def live_page(tmp_path_factory, browser_type):
    """The Live page in a Chromium whose camera shows a happy face, then a surprised one (looping)."""
    folder = tmp_path_factory.mktemp("live")
    camera = folder / "camera.y4m"
    write_y4m(camera, camera_segments(), CAMERA_FPS)
    server, url = start_streamlit(folder / "streamlit.log")
    browser = browser_type.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}"])
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
        page = context.new_page()
        page.goto(f"{url}/Live")
        yield page, server
    finally:
        browser.close()
        stop_streamlit(server)


def voice_line(emotion: str) -> re.Pattern:
    """The line naming the voice: its emotion, the actor and the sentence (issue 24 #8: not the file's name)."""
    return re.compile(rf"(Now playing|Last voice): {emotion} · RAVDESS actor \d\d \((fe)?male\) · “[A-Z][a-z ]+”")


def test_the_live_picture_is_boxed_and_the_voice_follows_the_change_of_expression(live_page, expressions,
                                                                                    output_path):
    from playwright.sync_api import expect

    page, server = live_page
    first, second = expressions
    assert first != second, expressions
    page.frame_locator("iframe[title*='streamlit_webrtc']").get_by_role("button", name="START").click(timeout=WAIT_MS)
    started = time.monotonic()

    expect(page.get_by_text(voice_line(first))).to_be_visible(timeout=WAIT_MS)
    first_clip = page.locator("audio").get_attribute("src")
    # The camera loops: the second expression's voice may only come after the first's again, a loop later.
    expect(page.get_by_text(voice_line(second))).to_be_visible(timeout=WAIT_MS)
    heard_after_s = time.monotonic() - started
    audio = page.locator("audio")
    expect(audio).to_have_count(1)
    assert audio.get_attribute("src") != first_clip
    # It played by itself (autoplay after the click on START), not only sits there.
    page.wait_for_function("() => document.querySelector('audio').played.length > 0", timeout=10_000)
    expect(page.get_by_role("heading", name=re.compile(rf"{second} \(\d+%\)"))).to_be_visible()

    # The picture coming back is the processed one, playing; and the rate the server keeps up.
    video = page.frame_locator("iframe[title*='streamlit_webrtc']").locator("video")
    assert video.evaluate("v => v.videoWidth > 0 && !v.paused")
    # The page's rates are over the last RATE_WINDOW_S (3 s); the server's CPU time over the same 3 s gives
    # the cost of a frame, which says what free cores would sustain where other work shares these.
    cpu_before, window_start = cpu_seconds(server.pid), time.monotonic()
    page.wait_for_timeout(3000)
    frames_per_s, readings_per_s = map(float, FRAMES.search(page.get_by_text(FRAMES).inner_text()).groups())
    cpu_per_s = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - window_start)
    print(f"\nlive: {frames_per_s:.1f} frames/s processed, faces read {readings_per_s:.1f} times/s; "
          f"camera {CAMERA_FPS} fps; server CPU {cpu_per_s:.2f} cores, {1000 * cpu_per_s / max(frames_per_s, 0.1):.0f} ms "
          f"per frame; load average {os.getloadavg()[0]:.1f}; {first} -> {second} voices within {heard_after_s:.0f} s")
    assert readings_per_s > 0 and frames_per_s > 0

    path = Path(output_path) / "live.png"
    page.screenshot(path=str(path))
    if os.environ.get("EMOVOICE_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)
