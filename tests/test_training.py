"""Training writes a complete run folder, can be cancelled and resumed, and never leaves a half-written model."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, replace

import keras
import numpy as np
import pytest
from PIL import Image

from core.data import load_dataset
from core.emotions import emotion_set
from core.faces import JITTER, cropped_faces
from core.models import build_model
from core.runs import METADATA_FILE, MODEL_FILE, ModelError, active_model_dir, list_runs, load_model, read_run, set_active
from core.training import (
    RandomWarp, augmenter, class_weights, final_metrics, recipe, save_ensemble, sharpness, split_faces, train,
    training_and_validation, validation_faces, validation_targets,
)
from support.photos import HAPPY_FACE, SAMPLE_ZIP, SURPRISED_FACE, portrait
from support.training import attach_test_votes, copy_run


def test_seed_architecture_is_the_student_model():
    model = build_model("seed", 5)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Rescaling"] + ["Conv2D", "MaxPooling2D", "Dropout"] * 3 + ["Flatten"] + ["Dense", "Dropout"] * 3 + ["Dense"]
    dense = [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert dense == [64, 128, 256, 5]


def test_a_run_writes_model_metadata_and_history(sample, tmp_path, monkeypatch):
    progress, traces = [], []
    step = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda model, data: traces.append(1) or step(model, data))
    config = recipe("seed", epochs=2, batch_size=32)
    metadata = train(config, sample, tmp_path, on_progress=progress.append)
    assert metadata.status == "finished"
    assert len(traces) == 1  # the step is traced once: a second trace costs every start seconds
    saved = json.loads((tmp_path / METADATA_FILE).read_text())
    assert saved["classes"] == ["angry", "fear", "happy", "sad", "surprise"]
    assert saved["architecture"] == "seed" and saved["input_size"] == 48
    assert saved["dataset"]["fingerprint"] == sample.fingerprint
    assert 0 <= saved["metrics"]["validation"]["accuracy"] <= 1
    assert (tmp_path / "history.csv").read_text().count("\n") == 3
    epochs = [p for p in progress if p.batch is None]
    assert [p.epoch for p in epochs] == [1, 2] and "val_accuracy" in epochs[-1].logs
    assert any(p.batch is not None and p.eta_s >= 0 for p in progress)
    loaded = load_model(tmp_path)
    assert loaded.classes == tuple(saved["classes"])


def test_class_balance_lifts_rare_emotions_and_keeps_the_average_weight():
    counts = np.array([400, 100, 25])  # 16 times fewer faces of the last emotion
    labels = np.repeat(np.arange(3), counts)
    assert np.allclose(class_weights(labels, 3, 0.0), 1.0)
    balanced = class_weights(labels, 3, 1.0)
    assert np.allclose(balanced * counts, balanced[0] * counts[0])  # every emotion weighs the same in all
    halfway = class_weights(labels, 3, 0.5)
    assert halfway[2] / halfway[0] == pytest.approx(4.0)  # the square root of 16
    for weights in (balanced, halfway):
        assert (weights * counts).sum() / counts.sum() == pytest.approx(1.0)


def test_labelled_photos_train_beside_the_dataset_cut_as_try_it_cuts_them(sample, tmp_path):
    folder = tmp_path / "my-photos"
    made = {}
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        for emotion, member in (("happy", HAPPY_FACE), ("surprise", SURPRISED_FACE)):
            (folder / emotion).mkdir(parents=True)
            for n, side in enumerate((200, 300)):
                photo = portrait(archive.read(member), positions=((100, 60),), side=side)
                Image.fromarray(photo).save(folder / emotion / f"{emotion}_{n}.png")
                made[(emotion, n)] = photo
    photos = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert len(photos.labels["all"]) == 4
    expected = sorted(cropped_faces(photo[..., 0], jitter=JITTER[:1]).faces[0].face.tobytes() for photo in made.values())
    assert sorted(face.tobytes() for face in photos.images["all"]) == expected  # the product's own crop

    config = recipe("seed", epochs=1, batch_size=32, photo_repeat=3)
    metadata = train(config, sample, tmp_path / "run", photos=photos)
    own = len(training_and_validation(sample, emotion_set("seed"))[0][1])
    assert metadata.dataset.train_images == own + 3 * 4
    assert json.loads((tmp_path / "run" / METADATA_FILE).read_text())["photos"] == {
        "source": str(folder), "fingerprint": photos.fingerprint, "faces": 4, "repeat": 3}


def test_cancel_stops_between_batches_and_keeps_nothing_half_written(sample, tmp_path):
    calls = []
    metadata = train(recipe("seed", epochs=3, batch_size=16), sample, tmp_path,
                     should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert metadata.status == "cancelled" and metadata.epochs_trained == 0
    assert not (tmp_path / MODEL_FILE).exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_resume_continues_from_the_checkpoint_and_keeps_the_runs_record(sample, trained_run, tmp_path):
    first = read_run(trained_run)
    run = tmp_path / "warm"
    begun = train(recipe("seed", epochs=1, batch_size=32), sample, run, init_model=trained_run)
    metadata = train(recipe("seed", epochs=2, batch_size=32), sample, run, resume=True)
    assert metadata.epochs_trained == 2
    assert metadata.initialised_from == str(trained_run.resolve()) and first.initialised_from is None
    assert metadata.created == begun.created
    assert metadata.training_seconds > begun.training_seconds
    # The epochs and CPU time behind the weights add up across the warm start and the resume.
    assert metadata.total_epochs == first.epochs_trained + 2
    assert metadata.training_cpu_seconds > begun.training_cpu_seconds > 0 and first.total_cpu_hours > 0
    assert metadata.total_cpu_hours == pytest.approx(
        first.total_cpu_hours + metadata.training_cpu_seconds / 3600, abs=1.5e-4)  # each rounded to 4 places


def test_keep_start_averages_the_starting_model_into_the_best_epoch(sample, trained_run, tmp_path):
    config = recipe("seed", epochs=1, batch_size=32, learning_rate=0.01, keep_start=0.25)
    metadata = train(config, sample, tmp_path / "run", init_model=trained_run)
    start = load_model(trained_run).model.get_weights()
    # One epoch: the checkpoint holds the best epoch's weights as trained, before the average.
    trained = keras.saving.load_model(tmp_path / "run" / "checkpoint.keras", compile=False).get_weights()
    kept = load_model(tmp_path / "run").model.get_weights()
    assert any(not np.allclose(s, t) for s, t in zip(start, trained))
    for s, t, k in zip(start, trained, kept):
        np.testing.assert_allclose(k, 0.25 * s + 0.75 * t, rtol=1e-5, atol=1e-6)
    assert metadata.recipe["keep_start"] == 0.25 and 0 <= metadata.accuracy("validation") <= 1
    # Resumed after stopping while it scored (all epochs done), the run does not average a second time.
    train(config, sample, tmp_path / "run", resume=True)
    for k, again in zip(kept, load_model(tmp_path / "run").model.get_weights()):
        np.testing.assert_array_equal(again, k)
    # Killed just after the averaged model was saved, before the metadata said so: --resume averages the
    # trained weights again, not the average (before the fix: 0.25 * s + 0.75 * (0.25 * s + 0.75 * t)).
    saved = json.loads((tmp_path / "run" / METADATA_FILE).read_text())
    (tmp_path / "run" / METADATA_FILE).write_text(json.dumps({**saved, "start_kept": None, "status": "training"}))
    train(config, sample, tmp_path / "run", resume=True)
    for k, again in zip(kept, load_model(tmp_path / "run").model.get_weights()):
        np.testing.assert_allclose(again, k, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="needs a model to start from"):
        train(config, sample, tmp_path / "alone")


def test_a_checkpoint_from_when_augmentation_was_a_layer_still_resumes(sample, trained_run, tmp_path):
    """Runs stopped before augmentation moved out of the trainer (its checkpoint wraps the net behind an
    "augment" layer) continue where they were, and finish as the plain net."""
    config = recipe("seed", epochs=2, batch_size=32)  # trained_run is its first epoch
    tmp_path = copy_run(trained_run, tmp_path / "run")
    faces = keras.Input((48, 48, 1))
    old = keras.Model(faces, build_model("seed", 5)(augmenter(1)(faces)))
    old.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    old.fit(np.zeros((32, 48, 48, 1), "float32"), np.eye(5, dtype="float32")[np.zeros(32, int)], verbose=0)
    old.save(tmp_path / "checkpoint.keras")
    state = json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**state, "config": asdict(config)}))

    metadata = train(config, sample, tmp_path, resume=True)
    assert metadata.status == "finished" and metadata.epochs_trained == 2
    plain = [type(layer).__name__ for layer in build_model("seed", 5).layers]
    for saved in (tmp_path / "model.keras", tmp_path / "checkpoint.keras"):  # the net alone, in the new layout
        assert [type(layer).__name__ for layer in keras.saving.load_model(saved, compile=False).layers] == plain


def test_augmentation_runs_only_while_training_and_is_not_saved(sample, tmp_path):
    faces = sample.images["test"][:8].astype(np.float32)[..., None]
    layers = augmenter(seed=1)
    assert np.array_equal(keras.ops.convert_to_numpy(layers(faces, training=False)), faces)
    changed = keras.ops.convert_to_numpy(layers(faces, training=True))
    assert changed.shape == faces.shape and not np.allclose(changed, faces)
    assert changed.min() >= -1e-3 and changed.max() <= 255 + 1e-3  # still pixel values

    metadata = train(recipe("vgg", epochs=1, batch_size=32), sample, tmp_path)
    saved = keras.saving.load_model(tmp_path / MODEL_FILE)
    assert "augment" not in [layer.name for layer in saved.layers]  # the product never runs augmentation
    assert metadata.status == "finished" and metadata.backend == keras.backend.backend()
    assert 0 < metadata.temperature and metadata.calibration.n == metadata.dataset.validation_images


def test_augmentation_moves_a_face_with_one_resampling_and_keeps_it_sharp(sample):
    """Three resamplings in a row blur a face to under half its sharpness; the one warp keeps most of it."""
    faces = sample.images["test"][:64].astype(np.float32)[..., None]
    warped = keras.ops.convert_to_numpy(augmenter(seed=1).layers[0](faces, training=True))
    assert not np.allclose(warped, faces) and sharpness(warped) > 0.6 * sharpness(faces)
    mirror_only = RandomWarp(shift=0.0, degrees=0.0, zoom=0.0, seed=1)(faces, training=True)
    flipped = np.abs(keras.ops.convert_to_numpy(mirror_only) - faces[:, :, ::-1]).max(axis=(1, 2, 3)) < 1e-3
    assert 0 < flipped.sum() < len(faces)  # each face mirrored or not, exactly, about half of them


def test_damaged_models_are_refused_and_the_active_model_stays(trained_run, tmp_path):
    copy_run(trained_run, tmp_path / "good")
    set_active(tmp_path / "good", runs_dir=tmp_path)
    assert active_model_dir(tmp_path) == tmp_path / "good"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / METADATA_FILE).write_text((tmp_path / "good" / METADATA_FILE).read_text())
    (broken / MODEL_FILE).write_bytes((tmp_path / "good" / MODEL_FILE).read_bytes()[:5000])  # truncated
    with pytest.raises(ModelError, match="damaged"):
        set_active(broken, runs_dir=tmp_path)
    assert active_model_dir(tmp_path) == tmp_path / "good"
    with pytest.raises(ModelError, match="only a run there"):  # the active run is named inside the runs folder
        set_active(tmp_path / "good", runs_dir=tmp_path / "elsewhere")

    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    (mismatch / MODEL_FILE).write_bytes((tmp_path / "good" / MODEL_FILE).read_bytes())
    meta = json.loads((tmp_path / "good" / METADATA_FILE).read_text())
    (mismatch / METADATA_FILE).write_text(json.dumps({**meta, "classes": list(meta["classes"]) + ["neutral"]}))
    with pytest.raises(ModelError, match="outputs 5 scores"):
        load_model(mismatch)
    (mismatch / METADATA_FILE).unlink()
    with pytest.raises(ModelError, match="metadata"):
        load_model(mismatch)
    assert sorted(run.name for run in list_runs(tmp_path)) == ["broken", "good"]  # listed; loading it is refused

    # Hand-edited metadata: another encoding, not a JSON object, a field missing or of the wrong kind.
    from core.recognise import load_classifier

    (mismatch / MODEL_FILE).write_bytes((tmp_path / "good" / MODEL_FILE).read_bytes())
    good = json.loads((tmp_path / "good" / METADATA_FILE).read_text())
    for damage in (json.dumps(good).encode("utf-16"), b"[]", json.dumps({k: v for k, v in good.items() if k != "name"}),
                   json.dumps({**good, "tta": "sideways"}), json.dumps({**good, "temperature": "hot"})):
        (mismatch / METADATA_FILE).write_bytes(damage if isinstance(damage, bytes) else damage.encode())
        with pytest.raises(ModelError, match="damaged"):
            load_classifier(mismatch)
        assert sorted(run.name for run in list_runs(tmp_path)) == ["broken", "good"]  # the others are still listed


def test_an_ensemble_folder_answers_the_mean_of_its_members(sample, trained_run, tmp_path):
    from core.evaluation import inference_of
    from core.recognise import load_classifier

    members = [trained_run, copy_run(trained_run, tmp_path / "other")]
    other = load_model(members[1]).model  # a second member that answers differently
    other.set_weights([weights * 1.5 for weights in other.get_weights()])
    other.save(members[1] / MODEL_FILE)
    metadata = save_ensemble(members, sample, tmp_path / "ensemble")
    assert metadata.architecture == "ensemble of 2 (seed)" and len(metadata.extra["members"]) == 2
    assert 0 <= metadata.accuracy("validation") <= 1 and metadata.temperature > 0
    faces = sample.select(None, tuple(metadata.classes))[0][:16].astype(np.float32)[..., None]
    expected = np.mean([load_model(folder).model.predict(faces, verbose=0) for folder in members], axis=0)
    assert np.allclose(load_model(tmp_path / "ensemble").model.predict(faces, verbose=0), expected, atol=1e-6)
    classifier = load_classifier(tmp_path / "ensemble")  # the product's path: one converted graph
    assert classifier.probabilities(faces[..., 0]).shape == (16, 5)
    assert inference_of(classifier).models == 2

    mirrored = save_ensemble(members, sample, tmp_path / "mirrored", tta="flip")  # its members see one view
    assert mirrored.tta == "flip" and inference_of(load_classifier(tmp_path / "mirrored")).views == 2
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        save_ensemble(members, sample, tmp_path / "bad", tta="rotate")


def test_a_run_on_fer_plus_votes_records_them_and_validates_on_the_taggers_majority(sample_zip, tmp_path):
    """Votes made here for the sample's faces: training takes their spread, validation their majority."""
    voted = load_dataset(sample_zip, cache_dir=tmp_path / "cache")
    majority_of = attach_test_votes(voted)
    emotions = emotion_set("all")
    held_out = split_faces(voted, emotions)[1]
    scored, targets = validation_targets(held_out, emotions)
    # The held-out faces' majorities as written above, ties left out
    expected = [majority_of[str(name)] for name in voted.names["test"][_held_out_index(voted, emotions)]]
    assert [emotions[label] for label in scored.labels] == [m for m in expected if m]
    assert np.array_equal(targets.argmax(axis=1), scored.labels)

    metadata = train(recipe("seed", emotions="all", epochs=1, batch_size=32), voted, tmp_path / "run")
    assert metadata.status == "finished" and metadata.dataset.votes == "test-votes.csv"
    assert json.loads((tmp_path / "run" / METADATA_FILE).read_text())["dataset"]["votes"] == "test-votes.csv"
    assert metadata.dataset.validation_images == len(scored) == metadata.metrics["validation"].n


def _held_out_index(dataset, emotions) -> np.ndarray:
    """Which of the sample's faces (all in test/) split_faces holds out, found by their pixels."""
    held_out = split_faces(dataset, emotions)[1].images
    faces = dataset.images["test"]
    return np.array([next(i for i, face in enumerate(faces) if np.array_equal(face, held)) for held in held_out])


def test_a_student_learns_its_teachers_answers(sample, trained_run, tmp_path, monkeypatch):
    """Distillation: a teacher that answers happy to every face, at the whole share of the targets, makes a
    student that answers happy too, whatever the faces' labels say."""
    teacher = copy_run(trained_run, tmp_path / "teacher")
    model = load_model(teacher).model
    head = model.layers[-1]
    bias = np.full(head.units, -5.0, np.float32)
    bias[list(load_model(teacher).classes).index("happy")] = 5.0
    head.set_weights([np.zeros_like(head.kernel), bias])
    model.save(teacher / MODEL_FILE)
    monkeypatch.chdir(tmp_path)  # the teacher given as typed, relative to where the command runs
    config = recipe("seed", epochs=3, batch_size=32, teacher="teacher", teacher_share=1.0)
    student = train(config, sample, tmp_path / "student")
    assert student.history_tail["accuracy"] > 0.9  # the student's answers against the targets: the teacher's
    # Recorded resolved, so `--resume` from any folder reads the same teacher.
    assert student.recipe["teacher"] == str(teacher.resolve()) and student.recipe["teacher_share"] == 1.0

    with pytest.raises(ValueError, match="the teacher .* knows angry, fear, happy, sad, surprise; this run trains"):
        train(replace(config, emotions="all"), sample, tmp_path / "seven")
    with pytest.raises(ValueError, match="needs both a teacher model and its share"):
        train(replace(config, teacher=""), sample, tmp_path / "no-teacher")


def test_class_folders_beside_a_test_and_a_val_folder_train_on_neither(fer_faces, trained_run, tmp_path):
    """happy/, sad/ ... at the top, with test/ and val/ beside them: test/ is for scoring, val/ for choosing
    the best epoch; neither is trained on, and a run on them is scored on test/."""
    for split, count in (("", 3), ("test", 2), ("val", 1)):
        for emotion in ("happy", "sad"):
            folder = tmp_path / "data" / split / emotion
            folder.mkdir(parents=True)
            for number, face in enumerate(fer_faces[emotion][len(split):len(split) + count]):
                (folder / f"{number}.png").write_bytes(face)
    dataset = load_dataset(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert sorted(dataset.splits) == ["all", "test", "val"]
    training, validation = split_faces(dataset, ("happy", "sad"))
    assert (len(training), len(validation)) == (6, 2)
    assert {face.tobytes() for face in training.images}.isdisjoint(
        face.tobytes() for split in ("test", "val") for face in dataset.images[split])

    run = copy_run(trained_run, tmp_path / "run")
    emotions = tuple(read_run(run).classes)
    metrics, _ = final_metrics(run, "none", dataset, emotions, validation_faces(dataset, emotions))
    assert metrics["test"].n == 4 and metrics["validation"].n == 2
