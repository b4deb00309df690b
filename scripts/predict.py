"""Recognise the emotion on each face in a photo and pick a matching voice clip.

    python scripts/predict.py samples/happy.jpg
    python scripts/predict.py face.png --whole-image --seed 7 --json
    python scripts/predict.py photo.jpg --explain why.png --gender female

One photo per call. A folder of photos (or a zip, or a video) is one call to scripts/label.py,
which writes a CSV row per face and loads the model once:

    python scripts/label.py my-photos/ --out faces.csv

The voice is strong when the model is sure of the face (calibrated probability at least
core.voices.STRONG_CONFIDENCE), normal otherwise. Boxes are x, y, width, height in the photo's
own pixels. --explain writes the photo with each face's Grad-CAM heatmap (what the model looked
at) and label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import VOICES_DIR  # noqa: E402  (light: no library behind either)
from core.voices import GENDERS  # noqa: E402


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, help="a photo (JPEG, PNG, WebP, GIF, BMP or TIFF, at most 20 MB)")
    parser.add_argument("--whole-image", action="store_true", help="the photo is already a face crop: skip detection")
    parser.add_argument("--model", type=Path, help="model folder (default: the active model)")
    parser.add_argument("--voices", type=Path, default=VOICES_DIR, help="voice bank folder")
    parser.add_argument("--gender", choices=GENDERS, help="prefer a female or male voice (default: any)")
    parser.add_argument("--seed", type=int, help="make the voice choice reproducible")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--explain", type=Path, metavar="OUT.png",
                        help="write the photo with each face's heatmap (what the model looked at) and label")
    args = parser.parse_args(argv)
    if args.explain and args.explain.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        parser.error(f"--explain {args.explain}: name a .png or .jpg file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    # Only now the libraries: --help and a bad argument answer at once. Predicting loads no TensorFlow
    # (core.recognise runs the converted model with LiteRT); --explain does, with its log lines silenced.
    from core.images import ImageError, read_photo
    from core.recognise import load_classifier, recognise
    from core.runs import ModelError
    from core.voices import NoVoiceError, VoicePicker, intensity_for, load_voice_bank

    try:
        data = read_photo(args.photo)  # the size and the kind of file first: nothing large is ever read
        classifier = load_classifier(args.model)
        result = recognise(classifier, data, whole_image=args.whole_image)
    except (ImageError, ModelError, OSError) as error:
        hint = "; a folder of photos is one call to scripts/label.py" if args.photo.is_dir() else ""
        failed = getattr(error, "filename", None) or args.photo  # an OSError names its file: the model's, maybe
        print(f"error: {failed}: {getattr(error, 'strerror', None) or error}{hint}", file=sys.stderr)
        return 2

    voice, voice_problem = None, None
    if result.main_face:
        bank = load_voice_bank(args.voices)
        for warning in bank.warnings:  # clips that do not play are left out: say which
            print(f"warning: {args.voices}: {warning}", file=sys.stderr)
        face = result.main_face
        try:
            voice = VoicePicker(bank, args.seed).draw(face.emotion, intensity_for(face.probabilities[face.emotion]),
                                                      args.gender)
        except NoVoiceError as error:
            voice_problem = str(error)
    if args.explain and result.faces:
        try:
            _write_explanation(args.explain, classifier, result)
        except OSError as error:
            print(f"error: {args.explain}: {error.strerror or error}", file=sys.stderr)
            return 2

    message = result.message()
    if message and not result.faces:
        message += " (--whole-image)"
    if args.json:
        print(json.dumps({
            "photo": str(args.photo),
            "photo_size": list(result.photo_size),  # width, height: the pixels the boxes are in
            "model": str(classifier.path),
            "faces": [face.as_dict() for face in result.faces],
            "message": message or voice_problem,
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
        if message:
            print(message)
        if voice:
            print(f"voice: {voice.path} ({voice.intensity or 'unrated'} {voice.emotion}, "
                  f"{voice.speaker or 'unknown speaker'})")
        elif voice_problem:
            print(voice_problem)
        if args.explain and result.faces:
            print(f"heatmaps: {args.explain}")
    return 0 if result.faces else 1


def _write_explanation(path: Path, classifier, result) -> None:
    """The photo with each face's Grad-CAM heatmap and label, written atomically as PNG or JPEG."""
    import cv2
    import numpy as np

    from core.drawing import faces_drawn
    from core.explain import heatmaps
    from core.runs import write_atomic

    maps = heatmaps(classifier.loaded.model, np.stack([face.face for face in result.faces]),
                    [classifier.classes.index(face.emotion) for face in result.faces])
    drawn = faces_drawn(result.image, result.faces, maps, photo_size=result.photo_size)

    def write(partial: Path) -> None:
        # The temporary file keeps the real suffix last, so OpenCV picks the format from it.
        if not cv2.imwrite(str(partial), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not encode {partial.suffix} image")

    write_atomic(path, write)


if __name__ == "__main__":
    sys.exit(main())
