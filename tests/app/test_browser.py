"""End to end in Chromium: a real `streamlit run` server, a photo upload and a (fake) webcam. Slow: minutes.

Screenshots of every page go to the test's output folder (test-results/); with
EMOVOICE_UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/ for the README:

    EMOVOICE_UPDATE_SCREENSHOTS=1 python -m pytest tests/app -m browser
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from core.emotions import EMOTIONS
from samples.bad_photos import bad_photos
from support.photos import PROJECT_ROOT, encode, fer_face_array, portrait, write_video
from support.server import start_streamlit, stop_streamlit

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
RESULT = re.compile(rf"Most prominent face: ({'|'.join(EMOTIONS)}) \(\d+%\)")
SLOW = 90_000  # ms: the first photo loads TensorFlow and the model in the server, on 2 busy cores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


# -- the server and the browser -----------------------------------------------------------------


@pytest.fixture(scope="session")
def server_url(scratch_folder, browser):
    """The dashboard for the whole session (runs and caches in the tests' scratch folder), its Home opened once as
    a visitor arriving at its address does: until some session has run the entrypoint's st.navigation, Streamlit
    serves a page opened by its own address from pages/ with its default sidebar."""
    server, url = start_streamlit(scratch_folder / "streamlit.log")
    first = browser.new_page()
    first.goto(url)
    first.get_by_role("heading").first.wait_for(timeout=SLOW)
    first.close()
    yield url
    stop_streamlit(server)


@pytest.fixture(scope="session")
def face_photo(scratch_folder, fer_face_jpeg) -> Path:
    """A FER2013 face enlarged into a 640x480 photo."""
    path = scratch_folder / "face.png"
    path.write_bytes(encode(portrait(fer_face_array(fer_face_jpeg), [(200, 120)]), "PNG"))
    return path


@pytest.fixture(scope="session")
def fake_webcam(scratch_folder, face_photo) -> Path:
    """The same photo as a short Y4M video, which Chromium's fake camera plays in a loop."""
    video = scratch_folder / "face.y4m"
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to make the fake webcam video")
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-i", str(face_photo), "-t", "1", "-r", "10",
                    "-pix_fmt", "yuv420p", "-vf", "scale=640:480", str(video)], check=True)
    return video


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, fake_webcam):
    # Debian's Chromium, quiet, with a fake camera that shows the face video and needs no permission click.
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_webcam}"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "permissions": ["camera"]}


# -- helpers --------------------------------------------------------------------------------------


def open_page(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading").first.wait_for(timeout=SLOW)
    settle(page)


def settle(page) -> None:
    """Wait until the script has finished running (the "Running..." indicator is gone)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=SLOW)


def screenshot(page, output_path, name: str, publish: bool = True) -> Path:
    """The page as it stands, in the test's output folder; the whole page into docs/ when publishing."""
    settle(page)
    path = Path(output_path) / f"{name}.png"
    if not (publish and os.environ.get("EMOVOICE_UPDATE_SCREENSHOTS")):
        page.screenshot(path=str(path))  # the window alone: a record of where a failing test stood
        return path
    # Streamlit scrolls inside its main section, not the document, so full_page=True would stop at the
    # fold: grow the window to the content's height instead, then put it back.
    viewport = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": min(max(height, viewport["height"]), 6000)})
    page.wait_for_timeout(800)  # charts and images re-layout to the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    return path


def expect_result(page) -> None:
    """The emotion of the main face is named, and its voice is on the page."""
    from playwright.sync_api import expect

    expect(page.get_by_text(RESULT)).to_be_visible(timeout=SLOW)
    expect(page.locator("audio")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"A \w+ voice"))).to_be_visible()


# -- tests ----------------------------------------------------------------------------------------


def test_upload_a_photo_and_hear_a_voice(page, server_url, face_photo, output_path):
    open_page(page, f"{server_url}/Try_It")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(face_photo))
    expect_result(page)
    screenshot(page, output_path, "try_it")


def test_the_voice_chosen_on_try_it_is_the_one_live_offers(page, server_url, face_photo):
    """One listener, one choice of voice: it holds from Try it to Live through the sidebar."""
    from playwright.sync_api import expect

    open_page(page, f"{server_url}/Try_It")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(face_photo))
    expect_result(page)
    page.get_by_role("radio", name="Female", exact=True).click()
    settle(page)
    expect(page.get_by_text("(female)")).to_be_visible(timeout=SLOW)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Live", exact=True).click()
    settle(page)
    expect(page.get_by_role("radio", name="Female", exact=True)).to_have_attribute("aria-checked", "true", timeout=SLOW)


def test_take_a_webcam_snapshot_and_hear_a_voice(page, server_url, output_path):
    open_page(page, f"{server_url}/Try_It")
    page.get_by_role("radio", name="Webcam").click()
    take_photo = page.get_by_role("button", name="Take Photo")
    take_photo.wait_for(timeout=SLOW)
    page.wait_for_timeout(1500)  # let the fake camera deliver frames
    take_photo.click()
    expect_result(page)
    screenshot(page, output_path, "try_it_webcam")


def test_a_close_up_and_a_rolled_head_are_answered(page, server_url, fer_face_jpeg, tmp_path, output_path):
    """Issue #11's two hard photos as a visitor uploads them: a selfie whose face runs off the edges, and a head
    rolled 25 degrees in a 640x480 photo; each gets a face, an emotion and a voice."""
    import cv2

    face = cv2.resize(fer_face_array(fer_face_jpeg), (600, 600), interpolation=cv2.INTER_CUBIC)
    close_up = tmp_path / "close-up.jpg"
    close_up.write_bytes(encode(face[60:540, 60:540]))
    turn = cv2.getRotationMatrix2D((300, 300), 25, 240 / 600)
    rolled = np.full((480, 640), 128, dtype=np.uint8)
    rolled[120:360, 200:440] = cv2.warpAffine(face, turn, (600, 600), borderValue=128)[180:420, 180:420]
    tilted = tmp_path / "tilted.jpg"
    tilted.write_bytes(encode(rolled))

    for photo, name in ((close_up, "try_it_closeup"), (tilted, "try_it_tilted")):
        open_page(page, f"{server_url}/Try_It")  # afresh: the first photo's answer must not stand for the second's
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
        expect_result(page)
        screenshot(page, output_path, name)


def test_every_page_renders_from_this_server_alone(page, server_url, output_path):
    """Each page in the sidebar draws, and nothing is fetched from anywhere but the dashboard's own server
    (issue 24: the browser fetched the tab's icon from fonts.gstatic.com)."""
    from playwright.sync_api import expect

    elsewhere = []

    def note_if_elsewhere(request) -> None:
        address = urlsplit(request.url)
        if address.scheme in ("http", "https", "ws", "wss") and address.hostname != "127.0.0.1":
            elsewhere.append(request.url)

    page.on("request", note_if_elsewhere)

    open_page(page, server_url)
    expect(page.get_by_role("heading", name="Voice bank")).to_be_visible()
    sidebar = page.locator('[data-testid="stSidebarNav"]')
    for name in ("Home", "Train", "Evaluate", "Try it", "Label", "Live"):
        expect(sidebar.get_by_role("link", name=name, exact=True)).to_have_count(1)
    screenshot(page, output_path, "home")

    open_page(page, f"{server_url}/Train")
    expect(page.get_by_role("button", name="Train")).to_be_visible()
    screenshot(page, output_path, "train")

    open_page(page, f"{server_url}/Evaluate")
    expect(page.get_by_role("heading", name="Misclassified faces")).to_be_visible(timeout=SLOW)
    screenshot(page, output_path, "evaluate")

    for path in ("Label", "Live"):  # drawn, as the tests of their own pages check further
        open_page(page, f"{server_url}/{path}")
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert not elsewhere, f"fetched from elsewhere: {sorted(set(elsewhere))}"


def test_every_bad_photo_gets_a_message_and_the_next_photo_works(page, server_url, face_photo, tmp_path,
                                                                   output_path):
    """The README's bad-photo table, as a visitor meets it: one upload after another in one tab."""
    from playwright.sync_api import expect

    open_page(page, f"{server_url}/Try_It")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    for bad in bad_photos():
        photo = tmp_path / bad.file_name
        photo.write_bytes(bad.data)
        uploader.set_input_files(str(photo))
        page.get_by_text(bad.file_name).wait_for(timeout=SLOW)  # this file, not the last one's answer
        answer = page.get_by_text(RESULT).or_(page.locator('[data-testid="stAlert"]'))
        expect(answer.first).to_be_visible(timeout=SLOW)
        settle(page)
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        screenshot(page, output_path, "bad_" + re.sub(r"\W+", "_", bad.kind).strip("_").lower(),
                   publish=bad.file_name == "truncated.jpg")  # the README shows one of them
    uploader.set_input_files(str(face_photo))
    expect_result(page)


def test_label_a_video_and_a_zip_of_photos(page, server_url, fer_face_jpeg, noise_png, tmp_path, output_path):
    """The Label page's two modes as a visitor uses them: a timeline and a voice for a video, a table of faces
    for a zip, and the CSV of each to download."""
    from playwright.sync_api import expect

    face = fer_face_array(fer_face_jpeg)
    # 3 s of a face drifting right: 15 frames at the page's 5 a second
    video = write_video(tmp_path / "talk.mp4", [portrait(face, [(100 + 4 * step, 120)]) for step in range(30)])
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("happy/one.jpg", encode(portrait(face)))
        archive.writestr("group.jpg", encode(portrait(face, [(60, 140), (380, 140)], side=200)))
        archive.writestr("noise.png", noise_png)
        archive.writestr("readme.txt", "not a photo")

    open_page(page, f"{server_url}/Label")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.set_input_files(str(video))
    expect(page.get_by_text(re.compile(r"Dominant emotion: \w+ \(15 of 15 faces\)"))).to_be_visible(timeout=SLOW)
    expect(page.locator("audio")).to_have_count(1)
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(1)  # the timeline
    screenshot(page, output_path, "label_video")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert download.value.suggested_filename == "talk-labels.csv"
    assert len(lines) == 1 + 15 and lines[1].startswith("talk.mp4,0.000,1,")

    uploader.set_input_files(str(photos))
    expect(page.get_by_text(re.compile(r"^3 photo\(s\), 1 without a face"))).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("skipped 1 file(s): not a photo")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
    screenshot(page, output_path, "label_folder")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the CSV").click()
    rows = Path(download.value.path()).read_text().splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == ["group.jpg", "group.jpg", "happy/one.jpg", "noise.png"]


def test_teach_the_active_model_a_zip_of_photos(page, server_url, fer_face_jpeg, tmp_path, output_path):
    """Train's warm start as a visitor finds it: the active model chosen, a zip of labelled photos read and counted."""
    from playwright.sync_api import expect

    face = fer_face_array(fer_face_jpeg)
    photos = tmp_path / "my-photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("happy/close.jpg", encode(portrait(face)))
        archive.writestr("happy/far.jpg", encode(portrait(face, [(100, 80)], side=160)))

    open_page(page, f"{server_url}/Train")
    page.get_by_text(re.compile(r"^the active model, ")).click()
    expect(page.get_by_text("Share of the active model kept")).to_be_visible(timeout=SLOW)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').last.set_input_files(str(photos))
    expect(page.get_by_text("Faces to learn: happy 2")).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("button", name="Train")).to_be_enabled()
    screenshot(page, output_path, "train_photos")


def test_killing_the_server_mid_training_loses_nothing(page, tmp_path):
    """A run started from the Train page carries on when the server dies: it trains more epochs, stops when
    asked (the operator's cancel, as from a terminal) and leaves a whole model."""
    from playwright.sync_api import expect

    from core.background import cancel_training, current_training, read_status, wait_for
    from core.runs import list_runs, load_model

    runs = tmp_path / "runs"
    server, url = start_streamlit(tmp_path / "streamlit.log", EMOVOICE_RUNS=str(runs))
    try:
        open_page(page, f"{url}/Train")
        page.get_by_role("radio", name="Bundled sample").click()
        page.get_by_text("seed — the student project's CNN").click()
        settle(page)
        page.get_by_role("button", name="Train").click()  # the seed recipe's 35 epochs: it outlives the server
        expect(page.get_by_text(re.compile(r"Training \S+-seed"))).to_be_visible(timeout=SLOW)
        running = current_training(runs)
        assert running is not None
    finally:
        # SIGKILL to the server's whole process group, as a closed terminal or an OOM kill would hit it,
        # with no clean-up of any kind. The worker runs in a session of its own, so it must carry on.
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()

    epochs_at_kill = len(read_status(running.run_dir).history)
    deadline = time.monotonic() + 300
    while (len(read_status(running.run_dir).history) < epochs_at_kill + 2 and current_training(runs) is not None
           and time.monotonic() < deadline):
        time.sleep(0.5)
    assert cancel_training(runs), "the worker died with the server"
    progress = wait_for(running.run_dir, 300, runs)
    assert progress.status == "cancelled", progress.error
    assert len(progress.history) >= epochs_at_kill + 2  # two whole epochs after the server died
    assert current_training(runs) is None  # the lock is free for the next run
    [run] = list_runs(runs)
    assert load_model(run.path).classes == tuple(run.classes)
