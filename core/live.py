"""Live: a stream of webcam frames, each face boxed and labelled, and a voice when the emotion changes and holds.

`LiveSession.process` takes one RGB frame at a time from whatever delivers them (the Live page's WebRTC
stream) and returns it with the answer drawn on it. Faces are read through the one photo path
(core.recognise.recognise) at most `READINGS_PER_S` times a second; frames in between get the last
reading's boxes, so the picture stays fluid while the cores do one reading at a time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.drawing import faces_drawn
from core.recognise import Classifier, FaceResult, recognise
from core.voices import Clip, NoVoiceError, VoiceBank, VoicePicker, intensity_for

HOLD_S = 2.0  # a new emotion must be shown this long before it is answered: a passing grimace is not
READINGS_PER_S = 10  # face readings a second at most; the goal is 10 frames a second on 2 cores
# A page that polls for the voice starts it up to this late (the Live page looks twice a second), so the next
# clip waits that much longer than the last one lasts: clips never overlap in the listener's ears.
VOICE_GAP_S = 0.5
RATE_WINDOW_S = 3.0  # frames and readings per second are counted over this recent stretch
UNKNOWN_CLIP_S = 4.0  # a clip whose length cannot be read is taken to last this long (RAVDESS's last 2-4 s)


class VoiceRule:
    """When to speak: the shown emotion changed, has held `hold_s`, and the last clip has finished.

    Times are seconds on any one clock. The rule is pure bookkeeping, so a test can drive it with
    made-up timestamps.
    """

    def __init__(self, hold_s: float = HOLD_S, gap_s: float = VOICE_GAP_S):
        self.hold_s = hold_s
        self.gap_s = gap_s
        self.spoken: str | None = None  # the emotion the last voice answered
        self._shown: str | None = None  # the emotion shown now, and since when
        self._since = 0.0
        self._quiet_from = -math.inf  # when the last clip (and the gap after it) is over

    def due(self, emotion: str | None, now: float) -> bool:
        """The emotion shown at `now` (None: no face). True when a voice for it should start now;
        the caller then says `started` (a True is not repeated until it does)."""
        if emotion != self._shown:
            self._shown, self._since = emotion, now
        return (emotion is not None and emotion != self.spoken and now - self._since >= self.hold_s
                and now >= self._quiet_from)

    def started(self, emotion: str, now: float, clip_s: float) -> None:
        """A voice for `emotion` started at `now` and lasts `clip_s` seconds (0 if none could be played)."""
        self.spoken = emotion
        self._quiet_from = now + clip_s + (self.gap_s if clip_s > 0 else 0.0)


@dataclass(frozen=True)
class Voice:
    number: int  # 1 for the session's first voice, then 2, ...: a new number is a new clip to play
    emotion: str
    clip: Clip | None  # None when the voice bank has no clip for the emotion (`error` says so)
    started_s: float  # on the session's clock
    duration_s: float
    error: str | None = None

    def playing(self, now: float) -> bool:
        return self.clip is not None and now < self.started_s + self.duration_s


@dataclass(frozen=True)
class LiveState:
    """What the page shows besides the picture: a consistent copy, safe to read from another thread."""

    emotion: str | None  # the most prominent face's emotion at the last reading; None: no face
    confidence: float
    faces: int
    voice: Voice | None  # the last voice started, if any
    frames_per_s: float  # frames processed (boxed and returned) per second, lately
    readings_per_s: float  # frames whose faces were read per second, lately
    now: float


class LiveSession:
    """One viewer's stream: frames in, frames with boxes out; the voice rule applied to every reading.

    With `background` (the Live page), faces are read in a thread of their own while `process` goes on
    drawing the last reading's boxes on each new frame: the picture keeps the camera's pace however long a
    reading takes on a busy machine. Without it each reading is made within the `process` call that is due
    one, so a test can drive the session frame by frame on made-up timestamps.
    Safe to call `process` from the stream's thread while another thread reads `state()`.
    """

    def __init__(self, classifier: Classifier, bank: VoiceBank, gender: str | None = None,
                 clock: Callable[[], float] = time.monotonic, seed: int | None = None,
                 readings_per_s: float = READINGS_PER_S, rule: VoiceRule | None = None, background: bool = True):
        self.classifier = classifier
        self.gender = gender
        self.clock = clock
        self.rule = rule or VoiceRule()
        self.background = background
        self._picker = VoicePicker(bank, seed)
        self._reading_every_s = 1.0 / readings_per_s
        self._next_reading = -math.inf
        self._reading = False  # a reading is under way (at most one at a time)
        self._faces: list[FaceResult] = []
        self._frames: deque[float] = deque()
        self._readings: deque[float] = deque()
        self._voice: Voice | None = None
        self._lock = threading.Lock()

    def process(self, frame: np.ndarray, now: float | None = None) -> np.ndarray:
        """An RGB frame -> a copy with each face's box and label, as of the latest reading; a new reading
        of this frame is started when one is due and none is under way."""
        now = self.clock() if now is None else now
        with self._lock:
            # Due times advance by the period, not from the last frame, so a 30 fps camera gets 10 readings a
            # second, not one every 4th frame (a millisecond early is on time: frame times are not exact); a
            # session that fell behind starts afresh from now.
            due = not self._reading and now >= self._next_reading - 1e-3
            if due:
                self._reading = True
                self._next_reading = max(self._next_reading, now - self._reading_every_s) + self._reading_every_s
        if due and self.background:
            threading.Thread(target=self._read, args=(frame, now), name="emovoice-live-reading", daemon=True).start()
        elif due:
            self._read(frame, now)
        with self._lock:
            faces = self._faces
            self._frames.append(now)
            _forget_before(self._frames, now - RATE_WINDOW_S)
        return faces_drawn(frame, faces, min_side=0)

    def _read(self, frame: np.ndarray, now: float) -> None:
        """Read the faces on a frame shown at `now`, then apply the voice rule to its most prominent face."""
        try:
            faces = recognise(self.classifier, frame).faces
            with self._lock:
                self._faces = faces
                self._readings.append(now)
                _forget_before(self._readings, now - RATE_WINDOW_S)
                main = faces[0] if faces else None
                if self.rule.due(main.emotion if main else None, now):
                    self._speak(main, now)
        finally:
            with self._lock:
                self._reading = False

    def _speak(self, face: FaceResult, now: float) -> None:
        emotion, number = face.emotion, (self._voice.number + 1 if self._voice else 1)
        try:
            clip = self._picker.draw(emotion, intensity_for(face.probabilities[emotion]), self.gender)
        except NoVoiceError as error:
            self._voice = Voice(number, emotion, None, now, 0.0, str(error))
            self.rule.started(emotion, now, 0.0)
            return
        self._voice = Voice(number, emotion, clip, now, clip.duration_s or UNKNOWN_CLIP_S)
        self.rule.started(emotion, now, self._voice.duration_s)

    def state(self) -> LiveState:
        with self._lock:
            main = self._faces[0] if self._faces else None
            return LiveState(emotion=main.emotion if main else None,
                             confidence=main.probabilities[main.emotion] if main else 0.0,
                             faces=len(self._faces), voice=self._voice,
                             frames_per_s=_rate(self._frames), readings_per_s=_rate(self._readings), now=self.clock())


def _forget_before(times: deque[float], start: float) -> None:
    while times and times[0] < start:
        times.popleft()


def _rate(times: deque[float]) -> float:
    """Events per second over the timestamps kept (0 until there are two)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])
