"""``mtkseg info`` / ``run`` / ``bench`` end to end, in process (cli.main) and as ``python -m``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.reference import Reference, agreement, model_path, smooth_frame

import mtkseg
from mtkseg.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(11)
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, shape in enumerate([(120, 180), (75, 200)]):
        p = folder / f"img{i}.png"
        cv2.imwrite(str(p), smooth_frame(rng, *shape))
        paths.append(p)
    return paths


def test_info_text_and_json(capsys):
    assert main(["info", model_path("int8_io")]) == 0
    out = capsys.readouterr().out
    assert "192x320" in out and "int8" in out and "scale=" in out and "runs on cpu" in out
    assert main(["info", model_path("metadata"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["class_names"] == ["road", "lane marking", "vehicle", "other"]
    assert doc["model"]["normalization_source"] == "metadata"
    assert doc["runtime"]["delegate"] == "cpu" and doc["runtime"]["copies_per_frame"] == 0
    assert main(["info", model_path("float32"), "--no-load", "--json"]) == 0
    assert "runtime" not in json.loads(capsys.readouterr().out)


def test_info_of_models_that_cannot_run(capsys):
    assert main(["info", model_path("custom_op")]) == 1
    captured = capsys.readouterr()
    assert "custom ops:     MtksegMagicOp" in captured.out and "MtksegMagicOp" in captured.err
    assert main(["info", model_path("classifier")]) == 1
    assert "not a segmentation map" in capsys.readouterr().err
    assert main(["info", "/no/such/model.tflite"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["info", model_path("float32"), "--delegate", "gpu"]) == 1
    assert "DelegateError" in capsys.readouterr().err


def test_run_writes_masks_and_overlays(tmp_path, images, capsys):
    out = tmp_path / "out"
    code = main(["run", model_path("float32"), str(images[0].parent), "-o", str(out), "--overlay", "--threads", "1",
                 "--delegate", "neuron,cpu"])
    assert code == 0
    text = capsys.readouterr().out
    assert "pre " in text and "infer " in text and "post " in text and "%" in text
    ref = Reference("float32")
    for p in images:
        mask = cv2.imread(str(out / f"{p.stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        frame = cv2.imread(str(p))
        assert mask.shape == frame.shape[:2] and mask.dtype == np.uint8
        assert agreement(mask, ref.run(frame)) >= 0.999
        overlay = cv2.imread(str(out / f"{p.stem}_overlay.png"))
        assert overlay.shape == frame.shape


def test_run_json_letterbox_and_errors(tmp_path, images, capsys):
    out = tmp_path / "o"
    code = main(["run", model_path("sidecar"), str(images[1]), str(tmp_path / "missing.png"), "-o", str(out),
                 "--json", "--fit", "letterbox", "--upsample", "bilinear", "--color-mask"])
    assert code == 1  # the missing image is reported, the other one is still written
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 1 and set(rows[0]["class_fractions"]) == {"background", "road", "car"}
    assert abs(sum(rows[0]["class_fractions"].values()) - 1) < 1e-6
    assert "missing.png" in captured.err
    seg = mtkseg.Segmenter(model_path("sidecar"), delegate="cpu", fit="letterbox", upsample="bilinear")
    expected = seg.run(images[1]).mask
    np.testing.assert_array_equal(cv2.imread(str(out / "img1_mask.png"), cv2.IMREAD_UNCHANGED), expected)
    assert (out / "img1_color.png").is_file()
    assert main(["run", model_path("float32"), str(tmp_path / "empty-dir-that-is-missing")]) == 1


def test_run_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["run", model_path("float32")])  # no image
    with pytest.raises(SystemExit):
        main(["run", model_path("float32"), "x.png", "--threads", "0"])
    capsys.readouterr()


def test_bench(capsys):
    assert main(["bench", model_path("float32"), "--runs", "3", "--warmup", "1", "--threads", "1,2", "--size", "90x160"]) == 0
    out = capsys.readouterr().out
    assert "(pre+post)/infer" in out and len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2
    assert main(["bench", model_path("float32"), "--runs", "2", "--json", "--size", "50x70"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["rows"][0]
    assert doc["frame"] == [50, 70] and row["total"] >= row["infer"] > 0 and row["overhead"] >= 0


def _python_m(module, *args):
    # The interpreter running the tests imports the same mtkseg (installed, or the dev tree).
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_python_m_cli(tmp_path, images):
    proc = _python_m("mtkseg.cli", "--version")
    assert proc.returncode == 0 and mtkseg.__version__ in proc.stdout
    proc = _python_m("mtkseg.cli", "run", model_path("portrait"), str(images[0]), "-o", str(tmp_path / "pm"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "pm" / "img0_mask.png").is_file()
    proc = _python_m("mtkseg.cli", "info", str(tmp_path / "nope.tflite"))
    assert proc.returncode == 1 and "not found" in proc.stderr


def test_python_m_mtkseg():
    proc = _python_m("mtkseg", "info", model_path("float32"), "--no-load")
    assert proc.returncode == 0 and "64x96" in proc.stdout


def test_run_refuses_to_overwrite_inputs_existing_outputs_and_links(images, tmp_path, capsys):
    """``run -o`` silently replaced existing files, and could write over an input image."""
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "img0_mask.png"
    existing.write_bytes(b"old")
    assert main(["run", model_path("float32"), *map(str, images), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and existing.read_bytes() == b"old"
    assert main(["run", model_path("float32"), *map(str, images), "-o", str(out), "--overwrite"]) == 0
    assert cv2.imread(str(existing), cv2.IMREAD_UNCHANGED).ndim == 2
    capsys.readouterr()
    # an input named like an output, in the output folder
    src = out / "x_mask.png"
    cv2.imwrite(str(src), cv2.imread(str(images[0])))
    before = src.read_bytes()
    (out / "x.png").symlink_to(src)
    assert main(["run", model_path("float32"), str(out / "x.png"), "-o", str(out), "--overwrite"]) == 2
    assert "input" in capsys.readouterr().err and src.read_bytes() == before
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (out / "img1_mask.png").unlink()
    (out / "img1_mask.png").symlink_to(victim)
    assert main(["run", model_path("float32"), *map(str, images), "-o", str(out), "--overwrite"]) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "precious"
    assert main(["run", model_path("float32"), str(images[0]), "-o", str(victim / "sub")]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# consistency across sub-commands
# ---------------------------------------------------------------------------------------
def _subparsers():
    import argparse

    from mtkseg.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no sub-commands")


def test_every_option_has_help_text():
    import argparse

    missing = [f"{name} {act.option_strings or act.dest}" for name, sp in _subparsers().items()
               for act in sp._actions if not isinstance(act, argparse._HelpAction) and not act.help]
    assert missing == []


def test_threads_and_delegate_defaults_are_the_segmenters_everywhere():
    # Segmenter's keyword arguments are the fields of SegmenterOptions, declared there once.
    segmenter_default = mtkseg.SegmenterOptions().num_threads
    assert mtkseg.SegmenterOptions().delegate == "auto"
    for name in ("info", "run", "video", "eval", "compare", "bench"):
        acts = {a.dest: a for a in _subparsers()[name]._actions}
        assert acts["threads"].default == segmenter_default, name
        assert acts["delegate"].default == "auto", name
        assert "default" in acts["model" if "model" in acts else "model_a"].help, name


def test_run_legend_and_json_from_to_dict(tmp_path, images, capsys):
    out = tmp_path / "o"
    assert main(["run", "default", str(images[0]), "-o", str(out), "--json", "--overlay", "--legend"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) >= {"image", "size", "classes", "class_fractions", "timings_ms", "outputs"}
    assert row["size"] == [120, 180] and len(row["classes"]) == 11
    with_legend = cv2.imread(str(out / "img0_overlay.png"))
    assert main(["run", "default", str(images[0]), "-o", str(out), "--overlay", "--overwrite"]) == 0
    plain = cv2.imread(str(out / "img0_overlay.png"))
    corner = np.any(with_legend[8:40, 8:40] != plain[8:40, 8:40])
    assert corner and np.array_equal(with_legend[100:, 150:], plain[100:, 150:])


def test_eval_and_compare_take_default_delegate_and_threads(tmp_path, capsys):
    from conftest import SHARED_DATA, require_shared

    data = require_shared(SHARED_DATA / "camvid")
    js, chart = tmp_path / "e.json", tmp_path / "e.png"
    assert main(["eval", "default", "--data", str(data), "--split", "val", "--limit", "2", "--delegate", "cpu",
                 "--threads", "1", "--json", str(js), "--chart", str(chart), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "2 images" in text and "cpu, 1 thread(s)" in text
    assert json.loads(js.read_text())["num_images"] == 2
    out = tmp_path / "cmp"
    assert main(["compare", "default", "default", "--data", str(data), "--limit", "2", "--delegate", "cpu",
                 "--out", str(out), "--examples", "0", "--no-progress"]) == 0
    assert "cpu" in capsys.readouterr().out
    assert (out / "compare.json").is_file()


def test_verbose_flag_sets_debug_and_unmutes(monkeypatch):
    from mtkseg import _quiet

    monkeypatch.setattr(_quiet, "_muting", True)
    logger = __import__("logging").getLogger("mtkseg")
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(_quiet, "_handler", None)
    try:
        assert main(["-v", "info", model_path("metadata"), "--no-load"]) == 0
        assert logger.level == 10 and not _quiet.muting_enabled()
    finally:
        if _quiet._handler is not None:
            logger.removeHandler(_quiet._handler)
