"""Recognise the emotion on each face in a photo and pick a matching voice clip.

    python scripts/predict.py samples/happy.jpg
    python scripts/predict.py face.png --whole-image --seed 7 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.images import ImageError  # noqa: E402
from core.paths import VOICES_DIR  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402
from core.runs import ModelError  # noqa: E402
from core.voices import NoVoiceError, VoicePicker, load_voice_bank  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path)
    parser.add_argument("--whole-image", action="store_true", help="the photo is already a face crop: skip detection")
    parser.add_argument("--model", type=Path, help="model folder (default: the active model)")
    parser.add_argument("--voices", type=Path, default=VOICES_DIR, help="voice bank folder")
    parser.add_argument("--seed", type=int, help="make the voice choice reproducible")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
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
        try:
            voice = VoicePicker(bank, args.seed).draw(result.main_face.emotion)
        except NoVoiceError as error:
            voice_problem = str(error)

    if args.json:
        print(json.dumps({
            "photo": str(args.photo),
            "model": str(classifier.loaded.path),
            "faces": [face.as_dict() for face in result.faces],
            "message": result.message() or voice_problem,
            "voice": None if voice is None else {"path": str(voice.path), "emotion": voice.emotion,
                                                 "speaker": voice.speaker, "text": voice.text},
        }, indent=2))
    else:
        for number, face in enumerate(result.faces, 1):
            top = sorted(face.probabilities.items(), key=lambda item: -item[1])[:3]
            print(f"face {number} at {face.box.as_list()}: {face.emotion} "
                  f"({', '.join(f'{name} {p:.0%}' for name, p in top)})")
        if result.message():
            print(result.message())
        if voice:
            print(f"voice: {voice.path} ({voice.emotion}, {voice.speaker})")
        elif voice_problem:
            print(voice_problem)
    return 0 if result.faces else 1


if __name__ == "__main__":
    sys.exit(main())
