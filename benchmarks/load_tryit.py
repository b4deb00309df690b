"""Many people on the Try-It page at once: answered uploads, errors, latency, server memory.

    python benchmarks/load_tryit.py --sessions 20 --seconds 60

Starts `streamlit run` on a free local port, opens N browser sessions (Playwright
contexts in Debian's Chromium, /usr/bin/chromium) on Try-It, and has each one
upload a fresh photo (a FER2013 face in a 640x480 frame, different bytes every
time, so nothing is answered from a cache), wait for the emotion and the voice,
clear it, and go again until the time is up. Latency is measured from the upload
to the answer on screen. Memory is the server process's peak resident size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "fer2013-sample.zip"
ANSWER = re.compile(r"Most prominent face: \w+|no face found", re.IGNORECASE)


def photos(folder: Path, count: int) -> list[Path]:
    """`count` distinct 640x480 JPEG photos of FER2013 faces."""
    import cv2

    with zipfile.ZipFile(SAMPLE) as archive:
        faces = [cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_GRAYSCALE)
                 for n in sorted(archive.namelist()) if n.endswith(".jpg")]
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        canvas = np.full((480, 640), 110 + index % 30, np.uint8)
        canvas[120:360, 200:440] = cv2.resize(faces[index % len(faces)], (240, 240), interpolation=cv2.INTER_CUBIC)
        canvas = np.clip(canvas + rng.normal(0, 2, canvas.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{index}.jpg"
        cv2.imwrite(str(path), canvas)
        paths.append(path)
    return paths


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def session(browser, url: str, pool: list[Path], offset: int, deadline: float, latencies: list, errors: list):
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(f"{url}/Try_It", timeout=120_000)
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        await uploader.wait_for(state="attached", timeout=120_000)
        turn = offset
        while True:  # at least one upload, so that a 1-second warm-up still loads the model
            photo = pool[turn % len(pool)]
            turn += 7
            started = time.monotonic()
            try:
                await uploader.set_input_files(str(photo))
                await page.get_by_text(ANSWER).first.wait_for(timeout=60_000)
                latencies.append(time.monotonic() - started)
                await page.locator('[data-testid="stFileUploaderDeleteBtn"] button').first.click(timeout=30_000)
                await page.get_by_text("No photo yet").wait_for(timeout=60_000)
            except Exception as error:  # a timeout or a page error is what we count
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
                await page.goto(f"{url}/Try_It", timeout=120_000)
                uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
                await uploader.wait_for(state="attached", timeout=120_000)
            if time.monotonic() >= deadline:
                break
    finally:
        await context.close()


async def run(url: str, sessions: int, seconds: float, pool: list[Path], server_pid: int):
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    samples: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        deadline = time.monotonic() + seconds

        async def watch_memory():
            while time.monotonic() < deadline:
                samples.append(memory_mb(server_pid))
                await asyncio.sleep(2)

        await asyncio.gather(watch_memory(), *(session(browser, url, pool, i, deadline, latencies, errors)
                                               for i in range(sessions)))
        await browser.close()
    return latencies, errors, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="emovoice-load-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "EMOVOICE_RUNS": str(scratch / "runs")}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=open(scratch / "server.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        # One warm-up upload loads TensorFlow and the model, as the first visitor of the day would.
        asyncio.run(run(url, 1, 1, photos(scratch, 1), server.pid))
        memory_before = memory_mb(server.pid)
        latencies, errors, samples = asyncio.run(run(url, args.sessions, args.seconds, photos(scratch, 200), server.pid))
        peak = memory_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)

    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    print(f"{args.sessions} sessions for {args.seconds:.0f} s against streamlit run on this machine ({os.cpu_count()} cores)")
    print()
    print("| sessions | uploads answered | errors | p50 latency | p95 latency | server memory after warm-up | during load (min-max) | peak |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.sessions} | {len(latencies)} | {len(errors)} | {statistics.median(latencies) if latencies else float('nan'):.2f} s "
          f"| {quantiles[18]:.2f} s | {memory_before:.0f} MB | {min(samples, default=0):.0f}-{max(samples, default=0):.0f} MB | {peak:.0f} MB |")
    for error in sorted(set(errors))[:5]:
        print(f"error: {error}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
