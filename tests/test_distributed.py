"""mtkseg.distributed on a real local Ray cluster (ray.init(num_cpus=2)): masks identical to
Segmenter.run and named as ``mtkseg run`` names them, video frame ranges, the CamVid confusion
matrix identical to the single-process evaluation, and an actor killed mid-run."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA, require_module, require_shared, skip_unless_ci
from fixtures.reference import smooth_frame

from mtkseg import distributed
from mtkseg.cli import main as cli_main
from mtkseg.errors import DistributedError
from mtkseg.segmenter import Segmenter, default_model_path

ray = require_module("ray", allow_module_level=True)
pq = require_module("pyarrow.parquet", allow_module_level=True)

MODEL = Path(__file__).parent / "fixtures" / "models" / "uint8_io.tflite"


def test_cli_engine_ray_starts_and_stops_a_local_cluster(tmp_path, capsys):
    """First in the file, before the module's cluster: the CLI starts its own and shuts it down."""
    if ray.is_initialized():
        pytest.skip("this process already joined a Ray cluster")
    paths = _images(tmp_path / "in")
    out = tmp_path / "out"
    cmd = ["run", str(MODEL), str(tmp_path / "in" / "*" / "img*.*"), str(paths[-1]), "-o", str(out),
           "--engine", "ray", "--workers", "1", "--threads", "1"]
    assert cli_main(cmd) == 1  # the broken image
    captured = capsys.readouterr()
    assert f"mtkseg run: error: {paths[-1].absolute()}: FrameError" in captured.err
    assert "5 frame(s) on 1 actor(s) x 1 CPU" in captured.out and "1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["img0_mask.png", "img0_2_mask.png", "img1_mask.png", "img2_mask.png", "img3_mask.png", "results.parquet"])
    assert cli_main(["run", str(MODEL), str(paths[0]), "-o", str(out), "--workers", "2"]) == 1  # no --engine ray
    assert "--workers and --address apply to --engine ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cluster():
    """One local 2-CPU cluster for the module (a cluster this process already joined is kept)."""
    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def _images(root: Path) -> list:
    """Six small images in two folders, two with the same stem (named x and x_2), one broken."""
    rng = np.random.default_rng(7)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    paths = []
    for i, (h, w) in enumerate([(60, 90), (75, 100), (64, 96), (50, 120)]):
        p = root / "a" / f"img{i}.png"
        cv2.imwrite(str(p), smooth_frame(rng, h, w))
        paths.append(p)
    dup = root / "b" / "img0.jpg"
    cv2.imwrite(str(dup), smooth_frame(rng, 70, 70))
    broken = root / "b" / "zz_broken.png"
    broken.write_bytes(b"not a png")
    return paths + [dup, broken]


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    """One distributed run over a folder, a glob, a broken image and a video (ranges of 16)."""
    root = tmp_path_factory.mktemp("dist")
    paths = _images(root / "in")
    sources = [root / "in" / "a", str(root / "in" / "b" / "*.jpg"), paths[-1], _video(root / "in" / "clip.mp4")]
    meet = root / "actors"
    meet.mkdir()
    report = distributed.segment(MODEL, sources, root / "out", workers=2, overlay=True, frames_per_task=8,
                                 progress=False, actor_class=_rendezvous(meet, distributed.SegmentActor))
    return root, paths, report


def _rendezvous(directory: Path, base: type, parties: int = 2, timeout_s: float = 120.0) -> type:
    """``base`` whose actors each hold their first batch until ``parties`` actor processes have
    started one (a file per pid in ``directory``).  Ray Data starts the pool's actors one by one
    and gives an actor at most a couple of batches in flight, so an actor that starts first
    could otherwise finish every batch before the other is up (it did on a loaded machine).
    With more batches than one actor may hold, the held actor's queue fills and the rest go to
    the other: both are used whatever the timing.  Which batch lands where still varies."""

    class Rendezvous(base):
        _met = False

        def __call__(self, batch):
            if not self._met:
                (directory / str(os.getpid())).touch()
                deadline = time.monotonic() + timeout_s  # then go on: the test's assertion says what happened
                while len(list(directory.iterdir())) < parties and time.monotonic() < deadline:
                    time.sleep(0.05)
                self._met = True
            return super().__call__(batch)

    return Rendezvous


def _video(path: Path, frames: int = 40) -> Path:
    """An MPEG-4 clip (keyframes every 12 frames: ranges start between them)."""
    rng = np.random.default_rng(5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (128, 96))
    base = smooth_frame(rng, 96, 128 + frames * 2)
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, 2 * i: 2 * i + 128]))
    writer.release()
    return path


def test_masks_equal_segmenter_run_and_names_match_mtkseg_run(run):
    root, paths, report = run
    local = root / "local"
    assert cli_main(["run", str(MODEL), *map(str, paths), "-o", str(local), "--overlay"]) == 1  # the broken image
    images = report.table.filter(report.table.column("frame").to_numpy() < 0).to_pylist()
    assert [r["name"] for r in images] == ["img0", "img1", "img2", "img3", "img0_2", "zz_broken"]
    with Segmenter(MODEL) as seg:
        for row, path in zip(images[:-1], paths[:-1]):
            assert row["error"] is None and row["source"] == str(path.absolute())
            mask = cv2.imread(row["mask_path"], cv2.IMREAD_UNCHANGED)
            result = seg.run(path)
            np.testing.assert_array_equal(mask, result.mask)
            assert row["share_class_1"] == pytest.approx(result.class_fractions()["class_1"])
    ours = {p.name for p in (root / "out").glob("img*.png")}
    assert ours == {p.name for p in local.glob("*.png")}
    for name in ours:  # byte for byte what the single-process run wrote, masks and overlays
        assert (root / "out" / name).read_bytes() == (local / name).read_bytes(), name
    # The broken image: a row with its path and the error, not an exception that lost the run.
    assert report.failures == [(str(paths[-1].absolute()), -1,
                                f"FrameError: frame: cannot decode {paths[-1].absolute()} as an image")]


def test_video_frame_ranges_decode_every_frame_once(run):
    root, _, report = run
    rows = [r for r in report.table.to_pylist() if r["frame"] >= 0]
    assert [r["frame"] for r in rows] == list(range(40))  # 5 ranges of 8, each frame once, in order
    assert report.workers == 2 and len({r["worker"] for r in report.table.to_pylist()}) == 2  # see _rendezvous
    for start in range(0, 40, 8):  # a range is one task: decoded by one actor, whichever it was
        assert len({r["worker"] for r in rows[start:start + 8]}) == 1, start
    cap = cv2.VideoCapture(str(root / "in" / "clip.mp4"))
    frames = [cap.read()[1] for _ in range(40)]  # decoded in one pass, as a single process would
    with Segmenter(MODEL) as seg:
        for row in rows:
            assert row["name"] == f"clip_{row['frame']:06d}" and row["error"] is None
            mask = cv2.imread(row["mask_path"], cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(mask, seg.run(frames[row["frame"]]).mask)
            assert Path(row["overlay_path"]).is_file()
    table = pq.read_table(report.parquet)  # written by Ray Data, committed with mtkseg._io
    assert table.num_rows == 46 and table.column("name").to_pylist() == report.table.column("name").to_pylist()
    assert not list(report.parquet.parent.glob(".*"))  # no temporary files left


def test_existing_outputs_are_refused_before_ray_runs(run):
    root, paths, _ = run
    from mtkseg.errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="--overwrite"):
        distributed.segment(MODEL, paths[:1], root / "out", workers=1, progress=False)


def _crash_once(marker: Path, base: type) -> type:
    """``base`` whose first actor exits hard (os._exit) after the first image of its first
    batch: once per run, recorded in ``marker`` with the dead worker's pid."""

    class CrashOnce(base):
        def _segment_one(self, *args, **kwargs):
            row = super()._segment_one(*args, **kwargs)
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return row
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)

    return CrashOnce


def test_actor_killed_mid_run_is_retried_nothing_lost_or_doubled(cluster, tmp_path):
    """The model travels as bytes here; the first actor exits after writing one mask."""
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    paths = []
    for i in range(10):
        paths.append(tmp_path / "in" / f"f{i:02d}.png")
        cv2.imwrite(str(paths[-1]), smooth_frame(rng, 48, 64))
    marker = tmp_path / "crashed"
    report = distributed.segment(MODEL.read_bytes(), tmp_path / "in", tmp_path / "out", workers=2, batch_size=2,
                                 progress=False, actor_class=_crash_once(marker, distributed.SegmentActor))
    dead = marker.read_text()
    rows = report.table.to_pylist()
    assert [r["name"] for r in rows] == [p.stem for p in paths] and not report.failures
    assert not any(r["worker"].endswith(f":{dead}") for r in rows)  # the dead actor's batch was redone elsewhere
    with Segmenter(MODEL) as seg:
        for row, path in zip(rows, paths):
            np.testing.assert_array_equal(cv2.imread(row["mask_path"], cv2.IMREAD_UNCHANGED), seg.run(path).mask)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{p.stem}_mask.png" for p in paths] + ["results.parquet"])


def test_eval_confusion_matrix_equals_single_process(cluster, tmp_path):
    from mtkseg.evaluate import evaluate_model

    data = require_shared(SHARED_DATA / "camvid")
    model = default_model_path()
    if model is None:
        skip_unless_ci("the bundled CamVid model (models/camvid-lite0-int8.tflite) is not present")
    local = evaluate_model(model, data, "test", limit=12, progress=False)
    remote = distributed.evaluate(model, data, "test", limit=12, workers=2, batch_size=2, progress=False)
    assert remote.num_images == 12 and not remote.errors and remote.workers == 2
    np.testing.assert_array_equal(remote.metrics.matrix, local.metrics.matrix)
    assert remote.metrics.miou == local.metrics.miou
    assert remote.to_dict()["confusion_matrix"] == local.to_dict()["confusion_matrix"]
    # The CLI: joins this process's cluster, writes the same matrix as the single-process report.
    out = tmp_path / "eval.json"
    assert cli_main(["eval", str(model), "--data", str(data), "--limit", "12", "--engine", "ray", "--workers", "2",
                     "--json", str(out), "--chart", str(tmp_path / "eval.png"), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert doc["confusion_matrix"] == local.to_dict()["confusion_matrix"] and doc["engine"] == "ray"


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DistributedError, match=r"pip install 'mtkseg\[ray\]'"):
        distributed.require_ray()


def test_sources_expand_like_mtkseg_run(tmp_path):
    from mtkseg.cli import run as cli_run

    assert distributed.sources.IMAGE_SUFFIXES == cli_run.IMAGE_SUFFIXES
    paths = _images(tmp_path)
    assert distributed.expand_sources([tmp_path / "a", tmp_path / "b"]) == cli_run.expand_images(
        [str(tmp_path / "a"), str(tmp_path / "b")])
    assert distributed.expand_sources(str(tmp_path / "*" / "img0.*")) == [paths[0], paths[4]]
    used: dict = {}
    assert distributed.output_names(paths) == [cli_run._unique_stem(p, used) for p in paths]


def test_unreachable_address_fails_fast():
    from mtkseg.distributed._ray import check_reachable

    with pytest.raises(DistributedError, match="nothing answers at 127.0.0.1:1"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(DistributedError, match="ray start --head"):
        check_reachable("ray://127.0.0.1:1")
