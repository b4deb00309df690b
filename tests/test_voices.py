"""The voice bank: layouts, random draws without repeats, and broken clips."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from core.emotions import EMOTIONS
from core.paths import VOICES_DIR
from core.voices import NoVoiceError, VoicePicker, choose_voice, load_voice_bank

REAL_CLIPS = sorted(VOICES_DIR.glob("*/*.mp3"))


def copy_clip(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


def test_shipped_bank_covers_every_emotion_with_ten_speakers_of_both_genders():
    bank = load_voice_bank(VOICES_DIR)
    assert not bank.warnings
    for emotion in EMOTIONS:
        speakers = {clip.speaker for clip in bank.clips[emotion]}
        assert len(speakers) >= 10, emotion
        assert any("female" in s for s in speakers) and any("(male)" in s for s in speakers)
    size = sum(p.stat().st_size for p in VOICES_DIR.rglob("*") if p.is_file())
    assert size <= 10 * 2**20
    attribution = (VOICES_DIR / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC-SA 4.0" in attribution and "Livingstone" in attribution


def test_ravdess_and_crema_d_names_are_recognised(tmp_path):
    copy_clip(REAL_CLIPS[0], tmp_path / "Actor_07" / "03-01-08-02-01-01-07.mp3")  # surprised, actor 7
    copy_clip(REAL_CLIPS[0], tmp_path / "crema" / "1001_DFA_ANG_XX.mp3")
    copy_clip(REAL_CLIPS[0], tmp_path / "Happiness" / "my-own-recording.mp3")
    bank = load_voice_bank(tmp_path)
    assert bank.counts()["surprise"] == 1 and bank.clips["surprise"][0].speaker == "RAVDESS actor 07 (male)"
    assert bank.clips["angry"][0].speaker == "CREMA-D actor 1001"
    assert bank.count("happy") == 1


def test_draws_never_repeat_and_are_reproducible():
    bank = load_voice_bank(VOICES_DIR)
    picker = VoicePicker(bank, seed=3)
    draws = [picker.draw("happy") for _ in range(50)]
    assert all(a != b for a, b in zip(draws, draws[1:]))
    assert len(set(draws)) > 5
    again = VoicePicker(bank, seed=3)
    assert [again.draw("happy") for _ in range(50)] == draws


def test_single_clip_emotion_still_answers(tmp_path):
    copy_clip(REAL_CLIPS[0], tmp_path / "sad" / "only.mp3")
    bank = load_voice_bank(tmp_path)
    clip = choose_voice(bank, "sad", random.Random(0))
    assert choose_voice(bank, "sad", random.Random(0), previous=clip) == clip


def test_broken_clips_are_skipped_with_a_warning(tmp_path):
    copy_clip(REAL_CLIPS[0], tmp_path / "happy" / "good.mp3")
    (tmp_path / "happy" / "corrupt.mp3").write_bytes(b"\x00garbage" * 200)
    (tmp_path / "happy" / "empty.ogg").write_bytes(b"")
    (tmp_path / "happy" / "song.xyz").write_bytes(b"whatever")
    (tmp_path / "fear").mkdir()  # empty emotion folder
    bank = load_voice_bank(tmp_path)
    assert [c.path.name for c in bank.clips["happy"]] == ["good.mp3"]
    text = " ".join(bank.warnings)
    assert "corrupt.mp3" in text and "empty.ogg" in text and "song.xyz" in text
    with pytest.raises(NoVoiceError, match="no clip for 'fear'"):
        choose_voice(bank, "fear", random.Random(0))


def test_missing_bank_folder_is_a_warning_not_a_crash(tmp_path):
    bank = load_voice_bank(tmp_path / "nowhere")
    assert bank.counts() == {e: 0 for e in EMOTIONS} and bank.warnings
