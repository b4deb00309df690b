"""Soak: one real dashboard server, mixed browser sessions for a set time, with faulthandler on (issue 24 item 1).

    python benchmarks/soak.py --minutes 60 [--port 8599] [--rss-csv soak-rss.csv] [--shots failed/]

The server once died with a segfault after a Train run, a Label video and a Live session; the cause was the
import order of streamlit_webrtc and TensorFlow (see streamlit_app.py and dashboard/__init__.py). This is the measurement
that shows the fix holds: it starts `streamlit run streamlit_app.py` with PYTHONFAULTHANDLER=1 (so a native crash
leaves a Python stack in the server's log), its runs and caches in a scratch folder (the real runs/ and the active
model are never touched), then opens one fresh headless Chromium context after another, cycling through kinds of
session — Home, a Try it upload, Evaluate on the bundled sample, Label on a zip of photos and on a short video, Live with the fake
camera started and closed — plus one short training on the Train page. A session is an error when the page shows
an exception, a wait times out, or the server is gone. The server's memory (RSS, with its child processes) is
sampled every 10 s, and summarised as the median of each 10 minutes: a leak climbs window after window, a warm
cache levels off. At the end it prints a markdown table of what happened (--rss-csv keeps every sample).

One browser page at a time, everything on 127.0.0.1, every wait bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from core.runs import write_atomic  # noqa: E402

SAMPLE_ZIP = PROJECT_ROOT / "samples" / "fer2013-sample.zip"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
START_TIMEOUT_S = 120
WAIT_MS = 120_000  # one page's answer: the first photo loads TensorFlow and the model, on 2 busy cores
TRAIN_WAIT_MS = 600_000  # a 1-epoch run of the seed network on the bundled sample, TensorFlow start included
VIDEO_FRAMES = 20  # 2 s at 10 frames a second
LIVE_STREAM_S = 6  # how long the fake camera streams before the page is closed
RSS_EVERY_S = 10
RSS_WINDOW_MIN = 10  # the memory summary: one median per window
STOP_TIMEOUT_S = 30
PAUSE_S = 2  # between sessions: visitors come one after another, and the machine's other work keeps its CPU
RESULT = re.compile(r"Most prominent face: \w+ \(\d+%\)")
WEBRTC_FRAME = "iframe[title*='streamlit_webrtc']"

KINDS = ("home", "try_it", "evaluate", "label", "label_video", "live")
TRAIN_AFTER = 1  # the one training comes early, so that every later session meets a server that has trained


# -- the measurements ------------------------------------------------------------------------------


@dataclass
class SessionResult:
    kind: str
    seconds: float
    error: str | None = None  # None: the session went as a visitor expects


@dataclass
class MemorySample:
    at_s: float
    server_kb: int  # the streamlit process alone
    tree_kb: int  # with its children (the training worker while a run goes)


@dataclass
class SoakReport:
    planned_minutes: float
    minutes: float = 0.0
    sessions: list[SessionResult] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    exit_code: int | None = None  # None: the server was alive at the end
    log_tail: str = ""
    fatal_lines: list[str] = field(default_factory=list)  # faulthandler's "Fatal Python error" and the like
    tracebacks: int = 0  # Python tracebacks in the server's log
    warm_at_s: float | None = None  # when the first round of every kind of session had ended


# -- the server ------------------------------------------------------------------------------------


def start_server(port: int, scratch: Path, log_path: Path) -> subprocess.Popen:
    """`streamlit run` on 127.0.0.1:port with faulthandler on and everything it writes in `scratch`; returned once
    it answers its health check. Raises RuntimeError with the end of its log otherwise."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "EMOVOICE_RUNS": str(scratch / "runs"),
           "EMOVOICE_CACHE": str(scratch / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while server.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"streamlit did not start on port {port}:\n{log_tail(log_path)}")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it has not gone within STOP_TIMEOUT_S."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        server.wait()


def log_tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def rss_kb(pid: int) -> int:
    """VmRSS of one process in kB, 0 when it is gone (or a kernel thread)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process whose parent chain leads to pid, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class MemorySampler(threading.Thread):
    """Samples the server's RSS every RSS_EVERY_S until stopped."""

    def __init__(self, pid: int, report: SoakReport, started: float):
        super().__init__(daemon=True)
        self.pid, self.report, self.started = pid, report, started
        self.stopped = threading.Event()

    def sample(self) -> None:
        server_kb = rss_kb(self.pid)
        if server_kb:
            tree_kb = server_kb + sum(rss_kb(child) for child in descendants(self.pid))
            self.report.memory.append(MemorySample(time.monotonic() - self.started, server_kb, tree_kb))

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(RSS_EVERY_S)


# -- what the sessions upload ----------------------------------------------------------------------


def sample_faces(count: int) -> list:
    """The first `count` faces of the bundled sample (48x48 grey arrays), one per emotion folder first."""
    import cv2
    import numpy as np

    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        names = sorted(name for name in archive.namelist() if name.endswith(".png"))
        by_folder: dict[str, str] = {}
        for name in names:
            by_folder.setdefault(name.rsplit("/", 1)[0], name)
        chosen = (list(by_folder.values()) + names)[:count]
        return [cv2.imdecode(np.frombuffer(archive.read(name), np.uint8), cv2.IMREAD_GRAYSCALE) for name in chosen]


def portrait(face, left: int = 200, top: int = 120, side: int = 240):
    """A face enlarged and pasted on a grey 640x480 canvas: a photo the face detector finds."""
    import cv2
    import numpy as np

    canvas = np.full((480, 640), 128, dtype=np.uint8)
    canvas[top:top + side, left:left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return canvas


def png(image) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@dataclass
class Uploads:
    photo: Path  # a portrait, for Try it
    photos_zip: Path  # three portraits, for Label
    video: Path  # 2 s of a face drifting right, for Label


def write_uploads(scratch: Path) -> Uploads:
    import cv2

    faces = sample_faces(3)
    photo = scratch / "portrait.png"
    photo.write_bytes(png(portrait(faces[0])))
    photos_zip = scratch / "photos.zip"
    with zipfile.ZipFile(photos_zip, "w") as archive:
        for number, face in enumerate(faces):
            archive.writestr(f"photo{number}.png", png(portrait(face, left=100 + 60 * number)))
    video = scratch / "talk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write an mp4 here")
    for step in range(VIDEO_FRAMES):
        writer.write(cv2.cvtColor(portrait(faces[0], left=100 + 6 * step), cv2.COLOR_GRAY2BGR))
    writer.release()
    return Uploads(photo, photos_zip, video)


# -- the sessions ----------------------------------------------------------------------------------


def settle(page) -> None:
    """Wait until the script has finished running (Streamlit's "Running..." indicator is gone)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=WAIT_MS)


def open_page(page, url: str) -> None:
    page.goto(url, timeout=WAIT_MS)
    page.get_by_role("heading").first.wait_for(timeout=WAIT_MS)
    settle(page)


def shown_exception(page) -> str | None:
    """The first exception Streamlit drew on the page, shortened, or None."""
    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count() == 0:
        return None
    return "exception on the page: " + " ".join(exceptions.first.inner_text().split())[:300]


def home(page, url: str, _uploads: Uploads) -> None:
    open_page(page, url)
    page.get_by_role("heading", name="Voice bank").wait_for(timeout=WAIT_MS)


def try_it(page, url: str, uploads: Uploads) -> None:
    open_page(page, f"{url}/Try_It")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(uploads.photo))
    page.get_by_text(RESULT).wait_for(timeout=WAIT_MS)
    page.locator("audio").first.wait_for(state="attached", timeout=WAIT_MS)


def evaluate(page, url: str, _uploads: Uploads) -> None:
    open_page(page, f"{url}/Evaluate")
    page.get_by_role("heading", name="Misclassified faces").wait_for(timeout=WAIT_MS)


def label(page, url: str, uploads: Uploads) -> None:
    open_page(page, f"{url}/Label")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(uploads.photos_zip))
    page.get_by_text(re.compile(r"^3 photo\(s\)")).wait_for(timeout=WAIT_MS)
    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=WAIT_MS)


def label_video(page, url: str, uploads: Uploads) -> None:
    open_page(page, f"{url}/Label")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(uploads.video))
    page.get_by_text(re.compile(r"Dominant emotion: \w+")).wait_for(timeout=WAIT_MS)
    page.locator("audio").first.wait_for(state="attached", timeout=WAIT_MS)


def live(page, url: str, _uploads: Uploads) -> None:
    """START the fake camera, let it stream, then the page is closed with the stream on (as a visitor leaves)."""
    open_page(page, f"{url}/Live")
    page.frame_locator(WEBRTC_FRAME).get_by_role("button", name="START").click(timeout=WAIT_MS)
    page.get_by_text(re.compile(r"frames a second")).wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(LIVE_STREAM_S * 1000)


def train(page, url: str, _uploads: Uploads) -> None:
    """The bundled sample, the seed network from scratch, 1 epoch; waits until the run has finished."""
    open_page(page, f"{url}/Train")
    page.get_by_role("radio", name="Bundled sample").click(timeout=WAIT_MS)  # a segmented control: radios
    settle(page)
    page.get_by_text("scratch", exact=True).click(timeout=WAIT_MS)
    settle(page)
    page.get_by_text("seed — the student project's CNN").click(timeout=WAIT_MS)
    settle(page)
    shown = page.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_test_id("stSliderThumbValue")
    for _ in range(3):  # a rerun that started late (a busy machine) redraws the slider at the network's default
        page.get_by_role("slider", name="Epochs").press("Home", timeout=WAIT_MS)  # its minimum: 1
        settle(page)
        if shown.inner_text(timeout=WAIT_MS).strip() == "1":
            break
    else:
        raise RuntimeError(f"could not set 1 epoch (the slider reads {shown.inner_text()})")
    page.get_by_role("button", name="Train").click(timeout=WAIT_MS)
    # The page says how the run ended; the run's name is in code style, so the text has no backticks.
    ended = page.get_by_text(re.compile(r"^Run \S+ (finished|failed|stopped|was cancelled)"))
    ended.wait_for(timeout=TRAIN_WAIT_MS)
    if not ended.inner_text().rstrip(".").endswith("finished"):
        raise RuntimeError(f"the training run did not finish: {ended.inner_text()[:200]}")


SESSIONS = {"home": home, "try_it": try_it, "evaluate": evaluate, "label": label, "label_video": label_video, "live": live, "train": train}


def failure_text(failure: Exception) -> str:
    """Playwright's first line and the line that names what it was waiting for."""
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    waiting = next((line for line in lines[1:] if line.startswith(("waiting for", "- waiting for"))), "")
    return f"{type(failure).__name__}: {lines[0][:200] if lines else ''}" + (f" ({waiting[:200]})" if waiting else "")


def run_session(browser, kind: str, url: str, uploads: Uploads, server: subprocess.Popen,
                shots: Path | None = None) -> SessionResult:
    """One visitor: a fresh browser context and page, the session's steps, the page closed. A session that
    fails leaves a screenshot of its page and the browser's console in `shots`, when given."""
    from playwright.sync_api import Error as PlaywrightError

    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    error = None
    try:
        page = context.new_page()
        console: list[str] = []  # the browser's own messages: a WebRTC frontend logs its failures there
        page.on("console", lambda message: console.append(f"{time.strftime('%H:%M:%S')} {message.type}: {message.text}"))
        try:
            SESSIONS[kind](page, url, uploads)
            settle(page)
        except PlaywrightError as failure:  # TimeoutError is one
            error = failure_text(failure)
        except RuntimeError as failure:
            error = str(failure)
        try:
            error = shown_exception(page) or error  # an exception on the page is the cause of a timeout after it
            if error and shots:
                shots.mkdir(parents=True, exist_ok=True)
                stem = shots / f"{time.strftime('%H%M%S')}-{kind}"
                stem.with_suffix(".console.txt").write_text("\n".join(console) + "\n")
                page.screenshot(path=str(stem.with_suffix(".png")), full_page=True)
        except PlaywrightError:
            pass
    finally:
        context.close()
    if server.poll() is not None:
        error = f"server gone (exit code {server.returncode})" + (f"; {error}" if error else "")
    return SessionResult(kind, time.monotonic() - started, error)


def session_order():
    """home, train, try_it, evaluate, label, label_video, live, then these six (no train) round and round."""
    count = 0
    while True:
        if count == TRAIN_AFTER:
            yield "train"
        yield KINDS[count % len(KINDS)]
        count += 1


# -- the run ---------------------------------------------------------------------------------------


def soak(minutes: float, port: int, scratch: Path, shots: Path | None = None) -> SoakReport:
    from playwright.sync_api import sync_playwright

    report = SoakReport(planned_minutes=minutes)
    uploads = write_uploads(scratch)
    log_path = scratch / "streamlit.log"
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, scratch, log_path)
    started = time.monotonic()
    sampler = MemorySampler(server.pid, report, started)
    sampler.start()
    deadline = started + minutes * 60
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for kind in session_order():
                    if time.monotonic() >= deadline or server.poll() is not None:
                        break
                    if not browser.is_connected():  # Chromium itself died: a new one, the session counts on
                        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    result = run_session(browser, kind, url, uploads, server, shots)
                    report.sessions.append(result)
                    if report.warm_at_s is None and set(KINDS) <= {done.kind for done in report.sessions}:
                        report.warm_at_s = time.monotonic() - started
                    time.sleep(PAUSE_S)
                    print(f"{(time.monotonic() - started) / 60:6.1f} min  {kind:9s} {result.seconds:6.1f} s  "
                          f"{result.error or 'ok'}", file=sys.stderr, flush=True)
            finally:
                browser.close()
    finally:
        sampler.sample()
        sampler.stopped.set()
        sampler.join(timeout=RSS_EVERY_S + 5)
        report.minutes = (time.monotonic() - started) / 60
        report.exit_code = server.poll()
        stop_server(server)
        log = log_path.read_text(errors="replace")
        report.fatal_lines = [line for line in log.splitlines()
                              if "Fatal Python error" in line or "Segmentation fault" in line or "core dumped" in line]
        report.tracebacks = log.count("Traceback (most recent call last)")
        if report.exit_code is not None or report.fatal_lines:
            report.log_tail = log_tail(log_path)
    return report


def megabytes(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def warm_rss(report: SoakReport) -> str:
    """The server's RSS at the first sample after every kind of session had run once: TensorFlow, the models and
    the caches are loaded, so growth from here to the end is what a leak would show."""
    warm = [sample for sample in report.memory if report.warm_at_s is not None and sample.at_s >= report.warm_at_s]
    return f"{megabytes(warm[0].server_kb)} at {warm[0].at_s / 60:.1f} min" if warm else "–"


def window_medians(report: SoakReport) -> list[int]:
    """The server's median RSS (kB) in each RSS_WINDOW_MIN-minute window, in order: medians, so that one
    request's transient peak does not read as growth."""
    windows: dict[int, list[int]] = {}
    for sample in report.memory:
        windows.setdefault(int(sample.at_s // (RSS_WINDOW_MIN * 60)), []).append(sample.server_kb)
    return [statistics.median_high(kbs) for _, kbs in sorted(windows.items())]


def write_rss_csv(report: SoakReport, path: Path) -> None:
    """Every memory sample, for a plot or a closer look (written whole, never half)."""
    rows = ["seconds,server_kb,with_children_kb", *(f"{s.at_s:.1f},{s.server_kb},{s.tree_kb}" for s in report.memory)]
    write_atomic(path, lambda partial: partial.write_text("\n".join(rows) + "\n"))


def markdown(report: SoakReport) -> str:
    counts = Counter(result.kind for result in report.sessions)
    errors = Counter(result.kind for result in report.sessions if result.error)
    by_kind = ", ".join(f"{kind} {counts[kind]}" + (f" ({errors[kind]} errors)" if errors[kind] else "")
                        for kind in (*KINDS, "train") if counts[kind])
    alive = "yes" if report.exit_code is None else f"no (exit code {report.exit_code})"
    rows = [
        ("minutes run", f"{report.minutes:.1f} (planned {report.planned_minutes:g})"),
        ("sessions", f"{len(report.sessions)}: {by_kind}"),
        ("errors", str(sum(errors.values()))),
        ("server alive at the end", alive),
        ("faulthandler / segfault lines in the server log", str(len(report.fatal_lines))),
        ("tracebacks in the server log", str(report.tracebacks)),
    ]
    if report.memory:
        first, last = report.memory[0], report.memory[-1]
        rows += [
            ("server RSS start / peak / end", " / ".join(megabytes(kb) for kb in (
                first.server_kb, max(sample.server_kb for sample in report.memory), last.server_kb))),
            ("server RSS once warm (every kind of session run once)", warm_rss(report)),
            ("with children start / peak / end", " / ".join(megabytes(kb) for kb in (
                first.tree_kb, max(sample.tree_kb for sample in report.memory), last.tree_kb))),
            (f"server RSS, median of each {RSS_WINDOW_MIN} minutes",
             " → ".join(megabytes(kb) for kb in window_medians(report))),
            ("RSS samples (every 10 s)", str(len(report.memory))),
        ]
    lines = ["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    failures = [result for result in report.sessions if result.error]
    if failures:
        lines += ["", "Errors:", *(f"- {result.kind}: {result.error}" for result in failures)]
    if report.log_tail:
        lines += ["", "Server log tail:", "```", report.log_tail, "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to keep opening sessions (default 60)")
    parser.add_argument("--port", type=int, default=8599, help="the server's port on 127.0.0.1 (default 8599)")
    parser.add_argument("--rss-csv", type=Path, help="also write every memory sample to this CSV file")
    parser.add_argument("--shots", type=Path, help="save a screenshot of every failed session in this folder")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        print("error: --minutes must be above 0", file=sys.stderr)
        return 2
    if not 1024 <= args.port <= 65535:
        print("error: --port must be between 1024 and 65535", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="emovoice-soak-") as scratch:
        try:
            report = soak(args.minutes, args.port, Path(scratch), args.shots)
        except RuntimeError as error:  # the server did not start
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.rss_csv:
        write_rss_csv(report, args.rss_csv)
    print(f"Soak of {report.minutes:.1f} minutes, {time.strftime('%Y-%m-%d %H:%M %Z')}\n")
    print(markdown(report))
    failed = report.exit_code is not None or report.fatal_lines or any(r.error for r in report.sessions)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
