"""Build the default voice bank (voices/) from RAVDESS speech clips.

    python scripts/build_voice_bank.py --source ../shared/data/ravdess

For each emotion the model knows, one clip per actor and intensity (both
genders; normal and strong, neutral has only normal in RAVDESS; the two
statements alternating), loudness-normalised, trimmed of leading and
trailing silence and encoded as mono MP3, which every browser plays.
Needs ffmpeg on the PATH.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import VOICES_DIR  # noqa: E402

RAVDESS_CODES = {"neutral": "01", "happy": "03", "sad": "04", "angry": "05", "fear": "06", "disgust": "07", "surprise": "08"}
INTENSITY_CODES = ("01", "02")  # normal, strong
# Loudness first: some normal-intensity clips peak below -39 dB, and a silence threshold applied before
# levelling would cut them away entirely.
LEVEL_AND_TRIM = ("loudnorm=I=-18:TP=-2,silenceremove=start_periods=1:start_threshold=-45dB,areverse,"
                  "silenceremove=start_periods=1:start_threshold=-45dB,areverse")

ATTRIBUTION = """\
# Voice clips: attribution and licence

The clips in this folder are derived from the Ryerson Audio-Visual Database of
Emotional Speech and Song (RAVDESS), speech, audio-only:

> Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional
> Speech and Song (RAVDESS): A dynamic, multimodal set of facial and vocal
> expressions in North American English. PLoS ONE 13(5): e0196391.
> https://doi.org/10.1371/journal.pone.0196391

Licence: Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International
(CC BY-NC-SA 4.0), https://creativecommons.org/licenses/by-nc-sa/4.0/

Changes made: clips selected (one per actor, emotion and intensity), loudness
normalised, leading and trailing silence trimmed, re-encoded as mono MP3 by
`scripts/build_voice_bank.py`. File names keep the original RAVDESS names
(modality-channel-emotion-intensity-statement-repetition-actor). These derived
clips are shared under the same licence; they may not be used commercially.
"""


def pick_clips(source: Path, per_emotion: int) -> dict[str, list[Path]]:
    """Up to `per_emotion` actors per emotion, each with a clip of every intensity RAVDESS has for it."""
    actors = sorted(p for p in source.glob("Actor_*") if p.is_dir())
    chosen: dict[str, list[Path]] = {}
    for emotion, code in RAVDESS_CODES.items():
        # Actors in order alternate male (odd) and female (even): any prefix holds both genders.
        for actor_dir in actors[:per_emotion]:
            actor = int(actor_dir.name.split("_")[1])
            for intensity in INTENSITY_CODES:
                # The statement alternates with actor and intensity, so both sentences are heard.
                statement = "01" if (actor + int(intensity)) % 2 else "02"
                matches = sorted(actor_dir.glob(f"03-01-{code}-{intensity}-{statement}-01-{actor:02d}.*"))
                if matches:
                    chosen.setdefault(emotion, []).append(matches[0])
    return chosen


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/ravdess"), help="RAVDESS folder (Actor_NN/...)")
    parser.add_argument("--out", type=Path, default=VOICES_DIR)
    parser.add_argument("--per-emotion", type=int, default=20, help="actors per emotion (a clip per intensity each)")
    parser.add_argument("--bitrate", default="40k")
    args = parser.parse_args(argv)
    if args.per_emotion < 1:
        parser.error("--per-emotion must be at least 1")
    args.out = args.out.resolve()
    return args


def replace_bank(built: Path, out: Path) -> Path | None:
    """Put the bank built in `built` at `out`. A bank already there is kept beside it, named by when it was
    replaced (`voices.replaced-20261207-161500`), and never deleted, however many rebuilds follow: clips a
    user added to it stay at hand. Returns where it went. When the new bank cannot be put in place, the old
    one goes back."""
    if not out.exists():
        built.rename(out)
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = next(path for n in itertools.count(1)
                if not (path := out.with_name(f"{out.name}.replaced-{stamp}" + (f"-{n}" if n > 1 else ""))).exists())
    out.rename(kept)
    try:
        built.rename(out)
    except OSError:
        kept.rename(out)
        raise
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    from core.emotions import EMOTIONS
    from core.voices import load_voice_bank  # it checks every clip with PyAV: once the arguments are good

    if args.out.exists() and not (args.out / "ATTRIBUTION.md").is_file():
        print(f"error: {args.out} exists and is not a voice bank this script built: give another --out", file=sys.stderr)
        return 2
    if shutil.which("ffmpeg") is None:
        print("error: ffmpeg is needed (apt-get install ffmpeg / brew install ffmpeg)", file=sys.stderr)
        return 2
    chosen = pick_clips(args.source, args.per_emotion)
    if not chosen:
        print(f"error: no RAVDESS clips under {args.source}", file=sys.stderr)
        return 2
    partial = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for emotion, clips in chosen.items():
            (partial / emotion).mkdir(parents=True)
            for clip in clips:
                target = partial / emotion / f"{clip.stem}.mp3"
                subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-af", LEVEL_AND_TRIM, "-ac", "1", "-ar",
                                "24000", "-c:a", "libmp3lame", "-b:a", args.bitrate, str(target)], check=True)
        (partial / "ATTRIBUTION.md").write_text(ATTRIBUTION)
    except (subprocess.CalledProcessError, OSError) as error:
        shutil.rmtree(partial, ignore_errors=True)  # no half-built bank left behind
        print(f"error: building the bank failed: {error}", file=sys.stderr)
        return 2
    try:
        previous = replace_bank(partial, args.out)
    except OSError as error:
        print(f"error: could not put the bank in {args.out} ({error}); it is built in {partial}", file=sys.stderr)
        return 2
    if previous:
        print(f"the bank it replaced is in {previous}", file=sys.stderr)
    bank = load_voice_bank(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"voice bank in {args.out}: {size / 1e6:.1f} MB; clips per emotion: {bank.counts()}")
    for warning in bank.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    missing = [e for e in EMOTIONS if not bank.count(e)]
    if missing:
        print(f"warning: no clips for {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
