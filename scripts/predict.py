"""Recognise the emotion on each face in a photo and pick a matching voice clip.

    python scripts/predict.py samples/happy.jpg
    python scripts/predict.py face.png --whole-image --seed 7 --json
    python scripts/predict.py photo.jpg --explain why.png --gender female

The voice is strong when the model is sure of the face (calibrated probability at least
core.voices.STRONG_CONFIDENCE), normal otherwise. --explain writes the photo with each
face's Grad-CAM heatmap (what the model looked at) and label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.drawing import faces_drawn  # noqa: E402
from core.explain import heatmaps  # noqa: E402
from core.images import ImageError  # noqa: E402
from core.paths import VOICES_DIR  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402
from core.runs import ModelError, write_atomic  # noqa: E402
from core.voices import GENDERS, NoVoiceError, VoicePicker, intensity_for, load_voice_bank  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path)
    parser.add_argument("--whole-image", action="store_true", help="the photo is already a face crop: skip detection")
    parser.add_argument("--model", type=Path, help="model folder (default: the active model)")
    parser.add_argument("--voices", type=Path, default=VOICES_DIR, help="voice bank folder")
    parser.add_argument("--gender", choices=GENDERS, help="prefer a female or male voice (default: any)")
    parser.add_argument("--seed", type=int, help="make the voice choice reproducible")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--explain", type=Path, metavar="OUT.png",
                        help="write the photo with each face's heatmap (what the model looked at) and label")
    args = parser.parse_args()
    if args.explain and args.explain.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        parser.error(f"--explain {args.explain}: name a .png or .jpg file")
    try:
        data = args.photo.read_bytes()
        classifier = load_classifier(args.model)
        result = recognise(classifier, data, whole_image=args.whole_image)
    except (ImageError, ModelError, OSError) as error:
        print(f"error: {args.photo}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return 2

    voice, voice_problem = None, None
    if result.main_face:
        bank = load_voice_bank(args.voices)
        face = result.main_face
        try:
            voice = VoicePicker(bank, args.seed).draw(face.emotion, intensity_for(face.probabilities[face.emotion]),
                                                      args.gender)
        except NoVoiceError as error:
            voice_problem = str(error)
    if args.explain and result.faces:
        maps = heatmaps(classifier.loaded.model, np.stack([face.face for face in result.faces]),
                        [classifier.classes.index(face.emotion) for face in result.faces])
        drawn = faces_drawn(result.image, result.faces, maps)
        try:
            write_atomic(args.explain, lambda partial: _write_image(partial, drawn))
        except OSError as error:
            print(f"error: {args.explain}: {error.strerror or error}", file=sys.stderr)
            return 2

    if args.json:
        print(json.dumps({
            "photo": str(args.photo),
            "model": str(classifier.loaded.path),
            "faces": [face.as_dict() for face in result.faces],
            "message": result.message() or voice_problem,
            "voice": None if voice is None else {"path": str(voice.path), "emotion": voice.emotion,
                                                 "intensity": voice.intensity, "speaker": voice.speaker,
                                                 "gender": voice.gender, "text": voice.text},
            "explanation": str(args.explain) if args.explain and result.faces else None,
        }, indent=2))
    else:
        for number, face in enumerate(result.faces, 1):
            top = sorted(face.probabilities.items(), key=lambda item: -item[1])[:3]
            print(f"face {number} at {face.box.as_list()}: {face.emotion} "
                  f"({', '.join(f'{name} {p:.0%}' for name, p in top)})")
        if result.message():
            print(result.message())
        if voice:
            print(f"voice: {voice.path} ({voice.intensity or 'unrated'} {voice.emotion}, "
                  f"{voice.speaker or 'unknown speaker'})")
        elif voice_problem:
            print(voice_problem)
        if args.explain and result.faces:
            print(f"heatmaps: {args.explain}")
    return 0 if result.faces else 1


def _write_image(path: Path, rgb: np.ndarray) -> None:
    # The temporary file keeps the real suffix last, so OpenCV picks the format from it.
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not encode {path.suffix} image")


if __name__ == "__main__":
    sys.exit(main())
