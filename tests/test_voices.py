"""The voice bank: layouts, random draws without repeats, and broken clips."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from core.emotions import EMOTIONS
from core.paths import VOICES_DIR
from core.voices import (GENDERS, STRONG_CONFIDENCE, NoVoiceError, VoicePicker, choose_voice, intensity_for,
                         load_voice_bank)

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


def test_shipped_bank_has_both_intensities_each_spoken_by_both_genders():
    bank = load_voice_bank(VOICES_DIR)
    for emotion in EMOTIONS:
        # RAVDESS has no strong neutral.
        intensities = ("normal",) if emotion == "neutral" else ("normal", "strong")
        assert {clip.intensity for clip in bank.clips[emotion]} == set(intensities), emotion
        for intensity in intensities:
            for gender in GENDERS:
                speakers = {c.speaker for c in bank.clips[emotion] if (c.intensity, c.gender) == (intensity, gender)}
                assert len(speakers) >= 5, (emotion, intensity, gender)


def test_ravdess_and_crema_d_names_are_recognised(tmp_path):
    copy_clip(REAL_CLIPS[0], tmp_path / "Actor_07" / "03-01-08-02-01-01-07.mp3")  # surprised, actor 7
    copy_clip(REAL_CLIPS[0], tmp_path / "crema" / "1001_DFA_ANG_XX.mp3")
    copy_clip(REAL_CLIPS[0], tmp_path / "Happiness" / "my-own-recording.mp3")
    copy_clip(REAL_CLIPS[0], tmp_path / "Actor_12" / "03-01-03-01-02-01-12.mp3")  # happy, normal, actor 12
    bank = load_voice_bank(tmp_path)
    surprise = bank.clips["surprise"][0]
    assert (surprise.speaker, surprise.intensity, surprise.gender) == ("RAVDESS actor 07 (male)", "strong", "male")
    assert bank.clips["angry"][0].speaker == "CREMA-D actor 1001"
    assert bank.clips["angry"][0].intensity is None and bank.clips["angry"][0].gender is None
    happy = {clip.path.name: clip for clip in bank.clips["happy"]}
    assert (happy["03-01-03-01-02-01-12.mp3"].intensity, happy["03-01-03-01-02-01-12.mp3"].gender) == ("normal", "female")
    assert (happy["my-own-recording.mp3"].intensity, happy["my-own-recording.mp3"].gender) == (None, None)


def test_a_sure_face_gets_a_strong_voice_and_the_gender_asked_for():
    assert intensity_for(STRONG_CONFIDENCE) == "strong" and intensity_for(STRONG_CONFIDENCE - 0.01) == "normal"
    bank = load_voice_bank(VOICES_DIR)
    rng = random.Random(0)
    for intensity in ("normal", "strong"):
        for gender in GENDERS:
            clips = {choose_voice(bank, "angry", rng, intensity=intensity, gender=gender) for _ in range(20)}
            assert {(c.intensity, c.gender) for c in clips} == {(intensity, gender)}
            assert len(clips) > 3
    # Neutral has no strong clip in RAVDESS: a strong request still gets a neutral voice of the gender asked for.
    clip = choose_voice(bank, "neutral", rng, intensity="strong", gender="female")
    assert (clip.emotion, clip.intensity, clip.gender) == ("neutral", "normal", "female")


def test_preferences_are_ignored_by_banks_that_cannot_honour_them(tmp_path):
    copy_clip(REAL_CLIPS[0], tmp_path / "sad" / "a.mp3")
    copy_clip(REAL_CLIPS[1], tmp_path / "sad" / "b.mp3")
    bank = load_voice_bank(tmp_path)
    drawn = {choose_voice(bank, "sad", random.Random(seed), intensity="strong", gender="male").path.name
             for seed in range(20)}
    assert drawn == {"a.mp3", "b.mp3"}


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


def test_clips_with_a_valid_header_and_garbage_inside_are_skipped_with_a_warning(tmp_path):
    """Issue 24 P8: such a clip was served and played nothing (the browser said DEMUXER_ERROR)."""
    import numpy as np

    garbage = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    copy_clip(REAL_CLIPS[0], tmp_path / "happy" / "good.mp3")
    (tmp_path / "happy" / "id3.mp3").write_bytes(REAL_CLIPS[0].read_bytes()[:10] + garbage)  # an ID3 header
    (tmp_path / "happy" / "frame.mp3").write_bytes(bytes([0xFF, 0xFB, 0x90, 0x00]) + garbage)  # an MPEG frame's
    (tmp_path / "happy" / "riff.wav").write_bytes(b"RIFF" + (20_004).to_bytes(4, "little") + b"WAVE" + garbage)
    (tmp_path / "happy" / "ogg.ogg").write_bytes(b"OggS" + garbage)
    bank = load_voice_bank(tmp_path)
    assert [clip.path.name for clip in bank.clips["happy"]] == ["good.mp3"]
    assert all(name in " ".join(bank.warnings) for name in ("id3.mp3", "frame.mp3", "riff.wav", "ogg.ogg"))
    assert 0.5 < bank.clips["happy"][0].duration_s < 10  # what Live waits for before the next voice


def test_a_clip_is_described_by_its_speaker_and_sentence_never_its_file_name():
    clip = load_voice_bank(VOICES_DIR).clips["happy"][0]
    assert clip.described.startswith("RAVDESS actor ") and "“" in clip.described
    assert clip.path.stem not in clip.described


def test_missing_bank_folder_is_a_warning_not_a_crash(tmp_path):
    bank = load_voice_bank(tmp_path / "nowhere")
    assert bank.counts() == {e: 0 for e in EMOTIONS} and bank.warnings


def ravdess_source(root: Path, actors: int = 2) -> Path:
    """RAVDESS-named speech clips, each a second of a tone: every emotion and intensity for each actor (as in
    RAVDESS, neutral is spoken at normal intensity only)."""
    import wave

    import numpy as np

    tone = (np.sin(np.linspace(0, 440 * 2 * np.pi, 16000)) * 8000).astype(np.int16).tobytes()
    for actor in range(1, actors + 1):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for code in ("01", "03", "04", "05", "06", "07", "08"):
            for intensity in ("01",) if code == "01" else ("01", "02"):
                for statement in ("01", "02"):
                    with wave.open(str(folder / f"03-01-{code}-{intensity}-{statement}-01-{actor:02d}.wav"), "wb") as clip:
                        clip.setnchannels(1), clip.setsampwidth(2), clip.setframerate(16000)
                        clip.writeframes(tone)
    return root


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="building a bank needs ffmpeg")
def test_building_a_bank_keeps_the_one_it_replaces_and_never_deletes_a_folder_it_did_not_build(tmp_path, capsys):
    from support.scripts import error_lines, run_main

    source = ravdess_source(tmp_path / "ravdess")
    out = tmp_path / "voices"
    assert run_main("build_voice_bank", "--source", source, "--out", out, "--per-emotion", 2) == 0
    assert load_voice_bank(out).counts() == {emotion: 2 if emotion == "neutral" else 4 for emotion in EMOTIONS}
    mine = out / "happy" / "my-own-clip.mp3"  # a user adds a clip, then rebuilds
    shutil.copy(next((out / "happy").iterdir()), mine)
    for _ in range(2):  # and rebuilds again: no rebuild deletes a bank it replaced
        assert run_main("build_voice_bank", "--source", source, "--out", out, "--per-emotion", 1) == 0
    assert load_voice_bank(out).count("happy") == 2
    replaced = sorted(tmp_path.glob("voices.replaced-*"))
    assert len(replaced) == 2 and (replaced[0] / "happy" / mine.name).is_file()

    photos = tmp_path / "photos"  # a typo'd --out: a folder of something else
    (photos / "holiday").mkdir(parents=True)
    (photos / "holiday" / "beach.jpg").write_bytes(b"a photo")
    capsys.readouterr()
    assert run_main("build_voice_bank", "--source", source, "--out", photos) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "is not a voice bank this script built" in line
    assert (photos / "holiday" / "beach.jpg").read_bytes() == b"a photo"
