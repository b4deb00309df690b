"""Live mode: when a voice plays (the rule, on made-up timestamps) and a session over real frames."""

from __future__ import annotations

import shutil
import time
import zipfile

import numpy as np
import pytest

from core.live import HOLD_S, LiveSession, VoiceRule
from core.voices import playable_seconds
from core.paths import VOICES_DIR
from core.recognise import recognise
from core.voices import load_voice_bank
from support.photos import HAPPY_FACE, SAMPLE_ZIP, SURPRISED_FACE, portrait

FRAME_S = 0.1  # made-up frames ten a second


def spoken(rule: VoiceRule, shown: list[tuple[float, str | None]], clip_s: float = 1.5) -> list[tuple[float, str]]:
    """Feed the rule (until, emotion) stretches a frame at a time; the (time, emotion) of every voice started."""
    voices, step = [], 0
    for until, emotion in shown:
        while (now := round(step * FRAME_S, 6)) < until:
            if rule.due(emotion, now):
                rule.started(emotion, now, clip_s)
                voices.append((now, emotion))
            step += 1
    return voices


def test_a_new_emotion_is_answered_once_it_has_held_two_seconds_and_only_once():
    assert spoken(VoiceRule(), [(5, "happy"), (10, "surprise")]) == [(HOLD_S, "happy"), (5 + HOLD_S, "surprise")]


def test_an_emotion_that_keeps_changing_is_never_answered():
    flicker = [(t / 2, "happy" if t % 2 else "sad") for t in range(1, 21)]  # half a second each, for 10 s
    assert spoken(VoiceRule(), flicker) == []


def test_a_voice_never_starts_before_the_last_one_and_its_gap_are_over():
    # A 6 s clip starts at 2 s; sad has held 2 s by 5 s, but waits for the clip (till 8 s) and the gap.
    rule = VoiceRule(gap_s=0.5)
    assert spoken(rule, [(3, "happy"), (12, "sad")], clip_s=6) == [(2, "happy"), (8.5, "sad")]


def test_the_same_emotion_after_a_lost_face_or_a_blip_is_not_answered_again():
    shown = [(3, "happy"), (6, None), (7, "happy"), (7.5, "angry"), (12, "happy")]
    assert spoken(VoiceRule(), shown) == [(2, "happy")]


def test_a_face_with_no_clip_for_its_emotion_is_told_not_retried():
    rule = VoiceRule()
    assert spoken(rule, [(3, "disgust")], clip_s=0) == [(2, "disgust")]  # said once; the page shows why
    assert rule.spoken == "disgust"


# -- a session over real frames, with the shipped model and voice bank -------------------------------------


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        return {name: portrait(archive.read(member)) for name, member in
                (("happy", HAPPY_FACE), ("surprised", SURPRISED_FACE))}


def test_a_session_boxes_every_frame_and_answers_each_held_expression_with_its_voice(classifier, frames):
    expected = [recognise(classifier, frames[name]).main_face.emotion for name in ("happy", "surprised")]
    assert expected[0] != expected[1]
    session = LiveSession(classifier, load_voice_bank(VOICES_DIR), clock=lambda: now, seed=0, background=False)
    now, voices = 0.0, []
    for step in range(300):  # 30 frames a second: 5 s of one face, then 5 s of the other
        now = step / 30
        frame = frames["happy" if now < 5 else "surprised"]
        drawn = session.process(frame, now)
        assert drawn.shape == frame.shape and not np.array_equal(drawn, frame)  # the box and label
        voice = session.state().voice
        if voice and (not voices or voices[-1] != voice):
            voices.append(voice)
    assert [v.emotion for v in voices] == expected
    assert [v.clip.emotion for v in voices] == expected
    assert voices[0].started_s == pytest.approx(HOLD_S, abs=0.15)
    assert voices[1].started_s == pytest.approx(5 + HOLD_S, abs=0.15)
    assert voices[0].duration_s == pytest.approx(playable_seconds(voices[0].clip.path)) and voices[0].duration_s > 0.5
    state = session.state()
    assert state.emotion == expected[1] and state.faces == 1 and state.confidence > 0.5
    assert state.frames_per_s == pytest.approx(30, rel=0.05)  # every frame drawn...
    assert state.readings_per_s == pytest.approx(10, rel=0.15)  # ...but faces read ten times a second


def test_an_emotion_without_clips_is_said_in_words(classifier, frames, tmp_path):
    (tmp_path / "sad").mkdir()
    shutil.copy(next((VOICES_DIR / "sad").glob("*.mp3")), tmp_path / "sad")
    session = LiveSession(classifier, load_voice_bank(tmp_path), clock=lambda: 0.0, background=False)
    for step in range(30):
        session.process(frames["happy"], step / 10)
    voice = session.state().voice
    assert voice.clip is None and "no clip for 'happy'" in voice.error


def test_in_the_background_frames_keep_flowing_while_faces_are_read(classifier, frames):
    """The Live page's way: a reading runs in its own thread, so a frame is never held up by one."""
    session = LiveSession(classifier, load_voice_bank(VOICES_DIR))
    blank = np.full_like(frames["happy"], 128)
    first = session.process(frames["happy"])  # starts a reading; the answer is not in yet
    assert np.array_equal(first, frames["happy"])
    deadline = time.monotonic() + 60
    while session.state().faces == 0:  # the reading lands, and the boxes go on the frames that follow
        assert time.monotonic() < deadline, "no reading came back within a minute"
        session.process(frames["happy"])
        time.sleep(0.02)
    assert not np.array_equal(session.process(blank), blank)  # last reading's box, drawn on the next frame
    assert session.state().emotion == recognise(classifier, frames["happy"]).main_face.emotion
