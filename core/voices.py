"""Voice bank: recorded clips per emotion, and drawing one at random.

A bank is a folder. Clips are sorted into emotions by their folder name
(`happy/clip.mp3`) or by the file-name conventions of two public corpora:
RAVDESS (`03-01-EE-II-SS-RR-AA`) and CREMA-D (`1001_DFA_ANG_XX`). RAVDESS names also
say the intensity (normal or strong) and the speaker's gender, so the answer can match
how sure the model is of the face, and the voice the user prefers.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.emotions import EMOTIONS, canonical_emotion

MIME_TYPES = {".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav",
              ".m4a": "audio/mp4", ".aac": "audio/aac", ".flac": "audio/flac", ".webm": "audio/webm"}
MIN_CLIP_BYTES = 512  # anything shorter cannot hold a second of speech
CHECKED_S = 0.25  # a clip is decoded this far when the bank loads: enough to know it plays

_RAVDESS = re.compile(r"^\d\d-\d\d-(?P<emotion>0[1-8])-(?P<intensity>\d\d)-(?P<statement>\d\d)-\d\d-(?P<actor>\d\d)$")
_RAVDESS_EMOTIONS = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry",
                     "06": "fear", "07": "disgust", "08": "surprise"}
_RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
_RAVDESS_INTENSITIES = {"01": "normal", "02": "strong"}
_CREMA_D = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>ANG|DIS|FEA|HAP|NEU|SAD)_(?P<level>[A-Z]{1,2})$")

GENDERS = ("female", "male")
# A face the model gives at least this calibrated probability is answered with a strong voice, others with
# a normal one. With the shipped model a third of FER2013's test faces reach it, and 92% of those are named
# right: the voice is emphatic only when the face is clear.
STRONG_CONFIDENCE = 0.8


@dataclass(frozen=True)
class Clip:
    path: Path
    emotion: str
    speaker: str | None = None
    text: str | None = None
    intensity: str | None = None  # "normal" or "strong"; None when the bank does not say
    gender: str | None = None  # "female" or "male"; None when the bank does not say
    duration_s: float | None = None  # how long it plays, read when the bank loads; None when unknown

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.path.suffix.lower()]

    @property
    def described(self) -> str:
        """Who speaks and what, for a caption: 'RAVDESS actor 07 (male) · “Kids are talking by the door”'
        (never the file's name)."""
        return (self.speaker or "unknown speaker") + (f" · “{self.text}”" if self.text else "")


@dataclass
class VoiceBank:
    folder: Path
    clips: dict[str, list[Clip]]  # emotion -> clips, in file-name order
    warnings: list[str] = field(default_factory=list)

    def count(self, emotion: str) -> int:
        return len(self.clips.get(emotion, []))

    def counts(self) -> dict[str, int]:
        return {emotion: self.count(emotion) for emotion in EMOTIONS}


class NoVoiceError(LookupError):
    """No clip for an emotion, with a message fit to show the user."""


def load_voice_bank(folder: str | Path) -> VoiceBank:
    """Scan a folder for clips; unreadable, unplayable or unrecognised files are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        return VoiceBank(folder, {}, [f"voice bank folder {folder} does not exist"])
    clips: dict[str, list[Clip]] = {}
    skipped: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix.lower() not in MIME_TYPES:
            if path.suffix.lower() not in (".md", ".txt", ".csv", ".json"):
                skipped.setdefault("unknown audio format", []).append(path.name)
            continue
        clip = _describe(path, folder)
        if clip is None:
            skipped.setdefault("no emotion in its folder or file name", []).append(path.name)
            continue
        duration_s = playable_seconds(path)
        if duration_s is None:
            skipped.setdefault("corrupt or empty clip (it does not play)", []).append(path.name)
            continue
        clips.setdefault(clip.emotion, []).append(dataclasses.replace(clip, duration_s=duration_s))
    warnings = [f"skipped {len(names)} file(s), {reason}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for reason, names in skipped.items()]
    return VoiceBank(folder, clips, warnings)


def _describe(path: Path, root: Path) -> Clip | None:
    speaker = text = intensity = gender = None
    emotion = None
    if match := _RAVDESS.match(path.stem):
        actor = int(match["actor"])
        emotion = _RAVDESS_EMOTIONS[match["emotion"]]
        gender = "male" if actor % 2 else "female"  # RAVDESS: odd actors are men, even actors women
        speaker = f"RAVDESS actor {actor:02d} ({gender})"
        text = _RAVDESS_STATEMENTS.get(match["statement"])
        intensity = _RAVDESS_INTENSITIES.get(match["intensity"])
    elif match := _CREMA_D.match(path.stem):
        emotion = canonical_emotion(match["emotion"])
        speaker = f"CREMA-D actor {match['actor']}"
    # A folder named after an emotion wins over the file name: the user sorted it on purpose.
    for parent in path.relative_to(root).parents:
        if parent.name and (folder_emotion := canonical_emotion(parent.name)):
            emotion = folder_emotion
            break
    return Clip(path, emotion, speaker, text, intensity, gender) if emotion else None


def playable_seconds(path: Path) -> float | None:
    """How long a clip plays, or None when it does not play. FFmpeg (through PyAV, which the Live page's
    WebRTC stack brings along) opens the file and decodes its first moments: a file with a valid header
    and garbage inside is caught here, not by a browser that plays nothing. About 1 ms a clip."""
    import av

    try:
        if path.stat().st_size < MIN_CLIP_BYTES:
            return None
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            samples = 0
            for frame in container.decode(stream):
                samples += frame.samples
                if samples >= stream.sample_rate * CHECKED_S:
                    break
            if samples == 0:
                return None
            if container.duration:
                return container.duration / av.time_base
            return float(stream.duration * stream.time_base) if stream.duration else samples / stream.sample_rate
    except (av.FFmpegError, IndexError, TypeError, ValueError, ZeroDivisionError, OSError, EOFError):
        return None


def intensity_for(confidence: float) -> str:
    """The voice intensity that matches how sure the model is of the face (a calibrated probability)."""
    return "strong" if confidence >= STRONG_CONFIDENCE else "normal"


def _preferring(clips: list[Clip], attribute: str, wanted: str | None) -> list[Clip]:
    # A preference narrows the choice only when the bank can honour it: a bank without genders or
    # intensities (plain folders, CREMA-D), or neutral (normal only in RAVDESS), still answers.
    matching = [clip for clip in clips if getattr(clip, attribute) == wanted]
    return matching if wanted is not None and matching else clips


def choose_voice(bank: VoiceBank, emotion: str, rng: random.Random, previous: Clip | None = None,
                 intensity: str | None = None, gender: str | None = None) -> Clip:
    """A random clip of `emotion`, never `previous` when there is any other.

    `gender` ("female"/"male") and `intensity` ("normal"/"strong") are preferences, in that
    order: clips that match are drawn from when the bank has any, else any clip of the emotion.
    """
    candidates = bank.clips.get(emotion, [])
    if not candidates:
        raise NoVoiceError(f"the voice bank has no clip for '{emotion}'; add some under {bank.folder / emotion}/")
    candidates = _preferring(_preferring(candidates, "gender", gender), "intensity", intensity)
    others = [clip for clip in candidates if clip != previous] or candidates
    return rng.choice(others)


class VoicePicker:
    """Draws clips per emotion, never the same one twice in a row; reproducible with a seed."""

    def __init__(self, bank: VoiceBank, seed: int | None = None):
        self.bank = bank
        self.rng = random.Random(seed)
        self.last: dict[str, Clip] = {}

    def draw(self, emotion: str, intensity: str | None = None, gender: str | None = None) -> Clip:
        clip = choose_voice(self.bank, emotion, self.rng, self.last.get(emotion), intensity, gender)
        self.last[emotion] = clip
        return clip
