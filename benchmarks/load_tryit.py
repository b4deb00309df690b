"""Many people on the Try-It page at once: answered uploads, errors, latency, server memory.

    python benchmarks/load_tryit.py --sessions 20 --seconds 60
    python benchmarks/load_tryit.py --sessions 20 --seconds 60 --pause 3   # people who listen to the voice first

Starts `streamlit run` on a free local port and opens N sessions on Try-It that speak
Streamlit's own protocol, as the browser's JavaScript does: a websocket with protobuf
messages, the photo sent by HTTP PUT to the upload URL the server hands out, then a
rerun carrying the uploader's new state. Each session uploads a fresh photo (a
FER2013 face in a 640x480 frame, different bytes every time, so nothing is answered
from a cache), waits until the page has run to the end, checks that it named an
emotion, and goes again until the time is up: at once, or after a pause of about
--pause seconds (random, 0.5-1.5 times it, as people do not click in step).

Latency runs from asking for the upload URL to the end of the page's run: all the
server's work for one photo. Rendering happens in each visitor's own browser, on
their own machine, so it is left out; driving 20 Chromiums on the server's own two
cores would measure the browsers instead (tests/app/test_browser.py covers a real
browser). Memory is the server process's resident size, sampled every second, and
its peak.

Why Streamlit's private protocol: no supported client can do this. AppTest runs a page's
script in the test's own process, without the server, its sessions, its threads or its
HTTP uploads, so it cannot measure a server under load. The agent API (experimental in
Streamlit 1.67, /_stcore/agent/interact) drives a running server without a browser, but
refuses uploads ("takes input JSON cannot express"), and an upload is what Try-It answers.
Playwright drives real browsers, the supported way, and tests/app/test_browser.py uses it for
one visitor; for 20 it measures the browsers. So the visitors here speak the protocol, and
tests/app/test_load.py runs this benchmark briefly, so that a Streamlit upgrade that changes
the protocol fails a test instead of leaving a benchmark that quietly measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: core is importable
SAMPLE = ROOT / "samples" / "fer2013-sample.zip"
PAGE = "Try_It"
ANSWERED = "Most prominent face:"
TIMEOUT_S = 60


def photos(count: int) -> list[bytes]:
    """`count` distinct 640x480 JPEG photos, each with one FER2013 face that the detector finds."""
    import cv2

    from core.faces import face_boxes
    from core.images import decode_image

    with zipfile.ZipFile(SAMPLE) as archive:
        faces = [cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_GRAYSCALE)
                 for n in sorted(archive.namelist()) if n.endswith((".jpg", ".png"))]
    rng = np.random.default_rng(0)
    encoded = []
    for index in range(10 * count):
        canvas = np.full((480, 640), 110 + index % 30, np.uint8)
        canvas[120:360, 200:440] = cv2.resize(faces[index % len(faces)], (240, 240), interpolation=cv2.INTER_CUBIC)
        canvas = np.clip(canvas + rng.normal(0, 2, canvas.shape), 0, 255).astype(np.uint8)
        jpeg = cv2.imencode(".jpg", canvas)[1].tobytes()
        if face_boxes(decode_image(jpeg, gray=True)):  # every upload takes the whole path, as the page reads it
            encoded.append(jpeg)
        if len(encoded) == count:
            return encoded
    raise RuntimeError(f"only {len(encoded)} of the sample's faces are found by the detector")


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard on a free local port, its runs and log in `folder`: (process, url), once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env={**os.environ, "EMOVOICE_RUNS": str(folder / "runs")},
        stdout=(folder / "server.log").open("wb"), stderr=subprocess.STDOUT)
    for _ in range(120):  # a minute
        if server.poll() is not None:
            break
        try:
            requests.get(f"{url}/_stcore/health", timeout=2).raise_for_status()
            return server, url
        except requests.RequestException:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"streamlit did not start; see {folder / 'server.log'}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TryItSession:
    """One visitor of the Try-It page, speaking Streamlit's websocket protocol."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.xsrf = ""
        self.websocket = None
        self.session_id = ""
        self.uploader_id = ""
        self.previous_upload = None  # the photo on screen, deleted when the next one replaces it

    async def open(self) -> None:
        health = await asyncio.to_thread(self.http.get, f"{self.url}/_stcore/health", timeout=TIMEOUT_S)
        self.xsrf = health.cookies.get("_streamlit_xsrf", "")
        self.websocket = await websockets.connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit", self.xsrf],
            additional_headers={"Origin": self.url, "Cookie": f"_streamlit_xsrf={self.xsrf}"}, max_size=None)
        await self._send(self._rerun())
        new_session = await self._receive("new_session")
        self.session_id = new_session.new_session.initialize.session_id
        for element in await self._run_to_end():
            if element.WhichOneof("type") == "file_uploader":
                self.uploader_id = element.file_uploader.id
        if not self.uploader_id:
            raise RuntimeError("the Try-It page shows no file uploader")

    async def upload(self, photo: bytes) -> None:
        """Upload one photo as the browser does; raise unless the page answers with an emotion."""
        request = BackMsg()
        request.file_urls_request.request_id = str(uuid.uuid4())
        request.file_urls_request.file_names.append("photo.jpg")
        request.file_urls_request.session_id = self.session_id
        await self._send(request)
        urls = (await self._receive("file_urls_response")).file_urls_response.file_urls[0]
        put = await asyncio.to_thread(self.http.put, self.url + urls.upload_url, timeout=TIMEOUT_S,
                                      files={"file": ("photo.jpg", photo, "image/jpeg")},
                                      headers={"X-Xsrftoken": self.xsrf})
        put.raise_for_status()

        rerun = self._rerun()
        widget = rerun.rerun_script.widget_states.widgets.add()
        widget.id = self.uploader_id
        info = widget.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, "photo.jpg", len(photo)
        info.file_urls.CopyFrom(urls)
        await self._send(rerun)
        elements = await self._run_to_end()

        if self.previous_upload is not None:  # the uploader replaced it: the browser deletes the old file
            await asyncio.to_thread(self.http.delete, self.url + self.previous_upload, timeout=TIMEOUT_S,
                                    headers={"X-Xsrftoken": self.xsrf})
        self.previous_upload = urls.delete_url
        said = []
        for element in elements:
            kind = element.WhichOneof("type")
            if kind == "exception":
                raise RuntimeError(f"the page raised {element.exception.type}: {element.exception.message}")
            if kind == "heading" and ANSWERED in element.heading.body:
                return
            if kind == "alert":
                said.append(element.alert.body)
        raise RuntimeError(f"the page named no emotion; it said {said}")

    async def close(self) -> None:
        if self.websocket is not None:
            await self.websocket.close()

    def _rerun(self) -> BackMsg:
        message = BackMsg()
        message.rerun_script.page_name = PAGE
        return message

    async def _send(self, message: BackMsg) -> None:
        await self.websocket.send(message.SerializeToString())

    async def _next_message(self) -> ForwardMsg:
        message = ForwardMsg()
        message.ParseFromString(await asyncio.wait_for(self.websocket.recv(), TIMEOUT_S))
        return message

    async def _receive(self, kind: str) -> ForwardMsg:
        while True:
            message = await self._next_message()
            if message.WhichOneof("type") == kind:
                return message

    async def _run_to_end(self):
        """The elements the page draws in one run, once it has finished."""
        elements = []
        while True:
            message = await self._next_message()
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                elements.append(message.delta.new_element)
            elif kind == "script_finished":
                if message.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                    raise RuntimeError(f"the page's run ended with status {message.script_finished}")
                return elements


async def visitor(url: str, pool: list[bytes], offset: int, deadline: float, pause: float,
                  latencies: list[float], errors: list[str]) -> None:
    # People do not click in step: each visitor arrives at a random moment within the first pause
    # and then waits 0.5-1.5 times the pause between photos (seeded, so runs are comparable).
    rng = random.Random(offset)
    session = TryItSession(url)
    try:
        await session.open()
        await asyncio.sleep(rng.uniform(0, pause))
        turn = offset
        while True:  # at least one upload, so that a 1-second warm-up still loads the model
            started = time.monotonic()
            try:
                await session.upload(pool[turn % len(pool)])
                latencies.append(time.monotonic() - started)
            except Exception as error:  # a timeout, a failed run or a wrong page is what we count
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}")
            turn += 7
            think = rng.uniform(0.5, 1.5) * pause
            if time.monotonic() + think >= deadline:
                break
            await asyncio.sleep(think)
    except Exception as error:
        errors.append(f"could not open the page: {type(error).__name__}: {error}")
    finally:
        await session.close()


async def load(url: str, sessions: int, seconds: float, pause: float, pool: list[bytes], server_pid: int):
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2 * sessions + 2))
    latencies: list[float] = []
    errors: list[str] = []
    memory: list[float] = []
    deadline = time.monotonic() + seconds

    async def watch_memory():
        while time.monotonic() < deadline:
            memory.append(memory_mb(server_pid))
            await asyncio.sleep(1)

    await asyncio.gather(watch_memory(), *(visitor(url, pool, i, deadline, pause, latencies, errors)
                                           for i in range(sessions)))
    return latencies, errors, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--pause", type=float, default=0.0,
                        help="mean seconds each visitor waits between uploads (0: the next photo at once)")
    args = parser.parse_args()

    server, url = serve(Path(tempfile.mkdtemp(prefix="emovoice-load-")))
    try:
        # One warm-up upload loads TensorFlow and the model, as the first visitor of the day would.
        asyncio.run(load(url, 1, 1, 0, photos(1), server.pid))
        pool = photos(10 * args.sessions)  # different bytes each time: nothing is answered from a cache
        memory_before = memory_mb(server.pid)
        server_cpu, own_cpu = cpu_seconds(server.pid), time.process_time()
        latencies, errors, memory = asyncio.run(load(url, args.sessions, args.seconds, args.pause, pool, server.pid))
        server_cpu, own_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - own_cpu
        peak = memory_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)

    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    median = statistics.median(latencies) if latencies else float("nan")
    print(f"{args.sessions} sessions for {args.seconds:.0f} s, {args.pause:g} s between uploads, "
          f"against streamlit run on this machine ({os.cpu_count()} cores)")
    print()
    print("| sessions | pause | uploads answered | per second | errors | p50 latency | p95 latency "
          "| server memory after warm-up | during load (min-max) | peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.sessions} | {args.pause:g} s | {len(latencies)} | {len(latencies) / args.seconds:.1f} | {len(errors)} "
          f"| {median * 1000:.0f} ms | {quantiles[18] * 1000:.0f} ms | {memory_before:.0f} MB "
          f"| {min(memory, default=0):.0f}-{max(memory, default=0):.0f} MB | {peak:.0f} MB |")
    print()
    print(f"Server CPU per answered upload: {1000 * server_cpu / max(1, len(latencies)):.0f} ms; "
          f"this script's own CPU (the {args.sessions} visitors, on the same cores): {own_cpu:.0f} s "
          f"of {args.seconds:.0f} s. Server memory over the run, every 10 s: "
          f"{', '.join(f'{m:.0f}' for m in memory[::10])} MB.")
    for error in sorted(set(errors))[:5]:
        print(f"error: {error}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
