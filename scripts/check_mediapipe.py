"""Check that MediaPipe Tasks' ImageSegmenter loads an mtkseg model and agrees with mtkseg.

MediaPipe pulls ``opencv-contrib-python``, which clashes with mtkseg's headless OpenCV, so it
runs in a separate virtual environment; this script has one step for each side:

    python -m venv /tmp/mpenv && /tmp/mpenv/bin/pip install mediapipe
    /tmp/mpenv/bin/python scripts/check_mediapipe.py mediapipe models/camvid-lite0-int8.tflite --out /tmp/mp.npz
    python scripts/check_mediapipe.py compare models/camvid-lite0-int8.tflite /tmp/mp.npz

The first step segments the test images (frames of the shared lane-lines clip and CamVid test
images) with ``mediapipe.tasks.vision.ImageSegmenter`` (category mask, CPU) and saves the masks;
the second runs ``mtkseg.Segmenter(model, upsample="bilinear")`` on the same images and prints
the pixel agreement per image (the target: >= 98 %).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CLIP = SHARED / "videos" / "udacity_lanelines_solidWhiteRight.mp4"
FRAMES = (0, 55, 110, 165, 215)
CAMVID = ("0001TP_008550", "Seq05VD_f00000", "Seq05VD_f02370")


def images():
    """``(name, RGB uint8)`` of every test image."""
    cap = cv2.VideoCapture(str(CLIP))
    i = 0
    while i <= max(FRAMES):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{CLIP}: ended before frame {max(FRAMES)}")
        if i in FRAMES:
            yield f"lanelines_{i:03d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        i += 1
    cap.release()
    for stem in CAMVID:
        path = SHARED / "camvid" / "images" / "test" / f"{stem}.png"
        img = cv2.imread(str(path))
        if img is None:
            raise SystemExit(f"{path}: cannot read")
        yield f"camvid_{stem}", cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def run_mediapipe(model: str, out: Path) -> None:
    import mediapipe as mp
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    options = vision.ImageSegmenterOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=model),
        output_category_mask=True, output_confidence_masks=False)
    masks = {}
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        labels = list(segmenter.labels)
        for name, rgb in images():
            result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
            masks[name] = result.category_mask.numpy_view().copy()
            print(f"{name}: mediapipe mask {masks[name].shape} classes {np.unique(masks[name]).tolist()}")
    np.savez_compressed(out, labels=np.array(labels), **masks)
    print(f"mediapipe {mp.__version__} loaded {model}; labels {labels}; wrote {out}")


def corner_aligned_reference(model: str, rgb: np.ndarray) -> np.ndarray:
    """The model run with MediaPipe's resampling conventions redone in OpenCV/numpy: the input
    warped corner to corner (not pixel-centre aligned as cv2.resize/mtkseg do), softmax at model
    resolution, probabilities warped corner to corner to the image, argmax."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=model)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    _, mh, mw, _ = inp["shape"]
    h, w = rgb.shape[:2]
    warp = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    m_in = np.float32([[(w - 1) / (mw - 1), 0, 0], [0, (h - 1) / (mh - 1), 0]])
    x = cv2.warpAffine(rgb, m_in, (int(mw), int(mh)), flags=warp, borderMode=cv2.BORDER_REPLICATE)
    it.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
    it.invoke()
    scale, zero = out["quantization"]
    logits = (it.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale
    prob = np.exp(logits - logits.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    oh, ow = prob.shape[:2]
    m_out = np.float32([[(ow - 1) / (w - 1), 0, 0], [0, (oh - 1) / (h - 1), 0]])
    up = np.stack([cv2.warpAffine(prob[..., k], m_out, (w, h), flags=warp, borderMode=cv2.BORDER_REPLICATE)
                   for k in range(prob.shape[-1])], axis=-1)
    return up.argmax(-1).astype(np.uint8)


def compare(model: str, saved: Path) -> int:
    import mtkseg

    data = np.load(saved)
    agreements, reference = [], []
    with mtkseg.Segmenter(model, upsample="bilinear", color="rgb") as seg:
        if list(data["labels"]) != list(seg.class_names):
            print(f"labels differ: mediapipe {list(data['labels'])} vs mtkseg {list(seg.class_names)}")
            return 1
        for name, rgb in images():
            ours = seg.run(rgb).mask
            theirs = data[name][..., 0] if data[name].ndim == 3 else data[name]  # MediaPipe: (H, W, 1)
            if theirs.shape != ours.shape:
                print(f"{name}: shapes differ {theirs.shape} vs {ours.shape}")
                return 1
            agree = float(np.mean(ours == theirs))
            ref = float(np.mean(corner_aligned_reference(model, rgb) == theirs))
            agreements.append(agree)
            reference.append(ref)
            print(f"{name}: {100 * agree:.2f} % of pixels agree with Segmenter(upsample='bilinear'), "
                  f"{100 * ref:.2f} % with a corner-aligned OpenCV reference")
    print(f"labels identical; mean agreement {100 * np.mean(agreements):.2f} %, lowest {100 * min(agreements):.2f} % "
          f"(corner-aligned reference: mean {100 * np.mean(reference):.2f} %, lowest {100 * min(reference):.2f} %)")
    return 0 if min(agreements) >= 0.98 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    a = sub.add_parser("mediapipe")
    a.add_argument("model")
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("compare")
    b.add_argument("model")
    b.add_argument("saved", type=Path)
    args = ap.parse_args()
    if args.step == "mediapipe":
        run_mediapipe(args.model, args.out)
        return 0
    return compare(args.model, args.saved)


if __name__ == "__main__":
    sys.exit(main())
