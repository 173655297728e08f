"""``mtkseg video`` end to end: argument parsing, outputs, exit codes, summary.

The Segmenter is replaced by the fake of test_video (``_make_segmenter`` is the seam), so
these tests check the command, not the model; ``test_cli_video_real_model`` runs the real
thing with a fixture model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_module

from mtkseg.cli import video as cli_video
from mtkseg.errors import InvalidArgumentError, SourceError

from test_video import FakeSegmenter, count_frames, video_threads, write_clip


def parse(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mtkseg")
    cli_video.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["video", *argv])


def run(argv: list) -> int:
    args = parse(argv)
    return args.func(args)


@pytest.fixture
def fake(monkeypatch) -> list:
    made = []

    def make(args):
        seg = FakeSegmenter()
        seg.args = args
        made.append(seg)
        return seg

    monkeypatch.setattr(cli_video, "_make_segmenter", make)
    return made


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi", 30)


def test_cli_writes_video_and_masks(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    code = run(["model.tflite", str(clip), "-o", str(out), "--masks", str(masks), "--smoothing", "ema",
                "--ema-momentum", "0.5", "--threads", "2", "--delegate", "cpu"])
    assert code == 0
    assert count_frames(out) == 30 and len(list(masks.glob("*.png"))) == 30
    stdout, stderr = capsys.readouterr()
    assert "30 frames processed" in stdout and "p50 ms" in stdout and f"wrote {out}" in stdout
    assert "30/30" in stderr  # tqdm progress bar for files
    args = fake[0].args
    assert (args.model, args.delegate, args.threads) == ("model.tflite", "cpu", 2)
    assert video_threads() == []


def test_cli_every_max_frames_and_color_masks(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    masks = tmp_path / "m"
    assert run(["m.tflite", str(clip), "--masks", str(masks), "--color-masks", "--every", "2", "--max-frames", "5",
                "--no-progress", "--smoothing", "mode3"]) == 0
    names = sorted(p.name for p in masks.glob("*.png"))
    assert names == [f"{i:06d}.png" for i in (0, 2, 4, 6, 8)]
    assert cv2.imread(str(masks / names[0]), cv2.IMREAD_UNCHANGED).shape == (48, 64, 3)
    stdout, stderr = capsys.readouterr()
    assert "5 frames processed" in stdout and "skipped" in stdout and stderr == ""


def test_cli_live_mode_on_file(tmp_path: Path, fake: list, capsys) -> None:
    fast = write_clip(tmp_path / "fast.avi", 20, fps=200.0)  # paced at 200 fps: 0.1 s
    assert run(["m.tflite", str(fast), "--live", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "live mode" in out and "read 20" in out


def test_cli_bad_source_names_it(tmp_path: Path, fake: list) -> None:
    with pytest.raises(SourceError, match="missing.mp4"):
        run(["m.tflite", str(tmp_path / "missing.mp4")])
    assert fake == []  # failed before loading the model


def test_cli_truncated_source_exit_1_with_output(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    data = clip.read_bytes()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(data[: int(len(data) * 0.7)])
    out = tmp_path / "out.avi"
    assert run(["m.tflite", str(bad), "-o", str(out), "--no-progress"]) == 1
    stdout, stderr = capsys.readouterr()
    assert "error" in stderr and "truncated" in stderr
    assert count_frames(out) == count_frames(bad) > 0


def test_cli_interrupt_returns_130(clip: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    # KeyboardInterrupt only reaches the main thread in real life; simulate it in the sink.
    from mtkseg.video import sinks as sinks_module

    original = sinks_module.VideoSink.write
    count = {"n": 0}

    def write(self, frame, result):
        count["n"] += 1
        if count["n"] == 8:
            raise KeyboardInterrupt
        original(self, frame, result)

    monkeypatch.setattr(sinks_module.VideoSink, "write", write)
    monkeypatch.setattr(cli_video, "_make_segmenter", lambda args: FakeSegmenter(delay=0.002))
    out = tmp_path / "out.avi"
    assert run(["m.tflite", str(clip), "-o", str(out), "--no-progress"]) == 130
    stdout, stderr = capsys.readouterr()
    assert "interrupted" in stderr and "interrupted" in stdout
    assert count_frames(out) >= 7
    assert video_threads() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["m", "src", "--every", "0"],
        ["m", "src", "--smoothing", "median"],
        ["m", "src", "--alpha", "1.5"],
        ["m", "src", "--max-frames", "-1"],
        ["m", "src", "--fps", "0"],
        ["m", "src", "--workers", "0"],
    ],
)
def test_cli_rejects_bad_options(argv: list) -> None:
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == 2


def test_cli_momentum_needs_ema(clip: Path, fake: list) -> None:
    with pytest.raises(InvalidArgumentError, match="ema"):
        run(["m", str(clip), "--ema-momentum", "0.5"])


def test_cli_image_folder_needs_fps_for_video(tmp_path: Path, fake: list, capsys) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 60 * i, np.uint8))
    with pytest.raises(InvalidArgumentError, match="fps"):
        run(["m", str(folder), "-o", str(tmp_path / "o.avi")])
    assert run(["m", str(folder), "-o", str(tmp_path / "o.avi"), "--fps", "5", "--no-progress"]) == 0
    assert count_frames(tmp_path / "o.avi") == 4


def _interrupt_real_run(clip: Path, tmp_path: Path, signum: int, suffix: str = ".avi"):
    """Run ``mtkseg video`` in a subprocess and send ``signum`` once frames are being written."""
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / f"out{suffix}"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import test_video as tv; from mtkseg.cli import video as cv;"
        "cv._make_segmenter = lambda args: tv.FakeSegmenter(delay=0.15);"
        "import test_cli_video as t; sys.exit(t.run(sys.argv[2:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(Path(__file__).parent), "m.tflite", str(clip), "-o", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # The video is written to a hidden temporary file beside -o and moved into place on close.
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob(f".out{suffix}.*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)
    assert proc.poll() is None, "finished before the interrupt"
    assert not out.exists(), "the output appears only once finalised"
    os.kill(proc.pid, signum)
    stdout, stderr = proc.communicate(timeout=20)
    return proc.returncode, stdout, stderr, out


def test_cli_real_sigint_finalises_output(clip: Path, tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT) while the main thread waits for results: exit 130, playable output."""
    import signal

    code, stdout, stderr, out = _interrupt_real_run(clip, tmp_path, signal.SIGINT)
    assert code == 130, stderr
    assert "interrupted" in stderr
    written = count_frames(out)
    assert 0 < written < 30
    assert f"wrote {out}: {written} frames" in stdout
    assert not list(tmp_path.glob(".out.avi.*")), "no temporary file left behind"


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_cli_real_sigterm_sighup_finalise_output_like_ctrl_c(clip: Path, tmp_path: Path, name: str) -> None:
    """``kill`` (SIGTERM) or a closed terminal (SIGHUP) used to kill the process mid-write: no
    moov atom, 0 frames.  Now they stop like Ctrl-C: exit 128+N, output with every processed frame."""
    import signal

    signum = getattr(signal, name)
    code, stdout, stderr, out = _interrupt_real_run(clip, tmp_path, signum)
    assert code == 128 + signum, stderr
    assert f"interrupted ({name})" in stderr
    written = count_frames(out)
    assert 0 < written < 30
    assert f"wrote {out}: {written} frames" in stdout


def test_cli_video_real_model_end_to_end(clip: Path, tmp_path: Path) -> None:
    """``python -m mtkseg.cli video`` with the int8 fixture model, as a user runs it."""
    import subprocess
    import sys

    from test_video import FIXTURE_MODELS

    model = FIXTURE_MODELS / "int8_io.tflite"
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    proc = subprocess.run(
        [sys.executable, "-m", "mtkseg.cli", "video", str(model), str(clip), "-o", str(out), "--masks", str(masks),
         "--smoothing", "mode3", "--threads", "1", "--every", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "15 frames processed" in proc.stdout and "flicker" in proc.stdout
    assert count_frames(out) == 15 and len(list(masks.glob("*.png"))) == 15
    mask = cv2.imread(str(masks / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (48, 64) and mask.max() < 11  # 11-class model

    bad = subprocess.run([sys.executable, "-m", "mtkseg.cli", "video", str(model), str(tmp_path / "nope.mp4")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "nope.mp4" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_json_stats(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    import json

    assert run(["m", str(clip), "-o", str(tmp_path / "o.avi"), "--json", "--no-progress", "--every", "3"]) == 0
    stdout, stderr = capsys.readouterr()
    stats = json.loads(stdout)
    assert (stats["frames_processed"], stats["frames_skipped"], stats["frames_dropped"], stats["error"]) == (10, 20, 0, None)
    assert set(stats["latency_ms"]["infer"]) == {"p50", "p90", "p99"}
    assert "wrote" in stderr


def test_cli_workers_with_the_real_model(clip: Path, tmp_path: Path, capsys) -> None:
    """``--workers 2``: two interpreters, the same masks as one; refused in live mode."""
    import json

    from test_video import FIXTURE_MODELS

    model = str(FIXTURE_MODELS / "int8_io.tflite")
    masks = {}
    for workers in ("1", "2"):
        out = tmp_path / f"masks{workers}"
        assert run([model, str(clip), "--masks", str(out), "--workers", workers, "--threads", "2", "--json",
                    "--no-progress"]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert stats["workers"].startswith(f"{workers} worker") and stats["frames_processed"] == 30
        masks[workers] = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(out.glob("*.png"))]
    assert len(masks["2"]) == 30 and all(np.array_equal(a, b) for a, b in zip(masks["1"], masks["2"]))
    with pytest.raises(InvalidArgumentError, match="live mode"):
        run([model, str(clip), "--workers", "2", "--live"])


def _digest(path: Path) -> bytes:
    import hashlib

    return hashlib.sha256(path.read_bytes()).digest()


def test_cli_never_writes_over_its_input(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    """``mtkseg video clip.avi -o clip.avi`` truncated the input; also through a link or ../ path."""
    from mtkseg.cli import main

    before = _digest(clip)
    link = tmp_path / "alias.avi"
    link.symlink_to(clip)
    for target in (clip, tmp_path / "sub" / ".." / clip.name):
        for extra in ([], ["--overwrite"]):
            assert main(["video", "m", str(clip), "-o", str(target), "--no-progress", *extra]) == 2
            assert "input" in capsys.readouterr().err
    assert main(["video", "m", str(link), "-o", str(clip), "--no-progress", "--overwrite"]) == 2
    assert _digest(clip) == before and count_frames(clip) == 30


def test_cli_refuses_existing_outputs_without_overwrite(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    from mtkseg.cli import main

    out, masks = tmp_path / "out.avi", tmp_path / "masks"
    out.write_bytes(b"keep me")
    assert main(["video", "m", str(clip), "-o", str(out), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    masks.mkdir()
    (masks / "000000.png").write_bytes(b"old mask")
    assert main(["video", "m", str(clip), "--masks", str(masks), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (masks / "000000.png").read_bytes() == b"old mask"
    assert main(["video", "m", str(clip), "-o", str(out), "--masks", str(masks), "--no-progress", "--overwrite"]) == 0
    assert count_frames(out) == 30 and len(list(masks.glob("*.png"))) == 30
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "no temporary files left"


def test_cli_refuses_symlinks_and_unwritable_paths(clip: Path, tmp_path: Path, fake: list, capsys) -> None:
    from mtkseg.cli import main

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.avi").symlink_to(victim)
    assert main(["video", "m", str(clip), "-o", str(tmp_path / "out.avi"), "--no-progress", "--overwrite"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "000003.png").symlink_to(victim)
    assert main(["video", "m", str(clip), "--masks", str(masks), "--no-progress", "--overwrite"]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for argv in (["-o", str(a_file / "out.avi")], ["--masks", str(a_file)], ["--masks", str(a_file / "sub")]):
        assert main(["video", "m", str(clip), "--no-progress", *argv]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and str(a_file) in err


@pytest.mark.parametrize("codec,expected", [(None, "h264"), ("h264", "h264"), ("mp4v", "mp4v")])
def test_cli_codec_is_explicit_and_reported(clip: Path, tmp_path: Path, fake: list, capsys, codec, expected) -> None:
    import json

    require_module("av")
    out = tmp_path / "out.mp4"
    argv = ["m.tflite", str(clip), "-o", str(out), "--no-progress", "--json"] + (["--codec", codec] if codec else [])
    assert run(argv) == 0
    stdout, stderr = capsys.readouterr()
    stats = json.loads(stdout)
    assert stats["codec"].startswith(expected)
    assert f"codec {expected}" in stderr  # the "wrote ..." line
    assert count_frames(out) == 30


def test_cli_real_sigterm_finalises_h264_mp4(clip: Path, tmp_path: Path) -> None:
    """SIGTERM while writing H.264 through PyAV: the encoder is flushed, the file moved into place."""
    import signal

    av = require_module("av")
    code, stdout, stderr, out = _interrupt_real_run(clip, tmp_path, signal.SIGTERM, suffix=".mp4")
    assert code == 128 + signal.SIGTERM, stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        written = sum(1 for _ in container.decode(video=0))
    assert 0 < written < 30 and f"wrote {out}: {written} frames" in stdout
    assert not list(tmp_path.glob(".out.mp4.*")), "no temporary file left behind"
