"""mtkseg.video: sources, the overlapped pipeline, live mode, smoothing, sinks, robustness.

Most tests drive the pipeline with small fake segmenters (same interface as
``mtkseg.Segmenter``: ``run(frame, *, score_filter=None)`` returning a result with
``.mask``, ``.timings``, ``.overlay()``, ``.colorize()``) so they isolate the pipeline and
run in seconds; ``test_real_segmenter_*`` use the real Segmenter with a fixture model.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_module, require_shared
from fixtures.reference import (
    DEFAULT_MODEL,
    NearestResizeReference,
    Reference,
    SwappedColourReference,
    agreement,
    decode_frames,
    sidecar_normalization,
    smooth_frame,
    stream_masks,
)

from mtkseg import ops, viz
from mtkseg import video
from mtkseg.errors import FrameError, InvalidArgumentError, InvalidTypeError, SourceError, StreamError
from mtkseg.video import Frame, StreamStats

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "udacity_lanelines_solidWhiteRight.mp4"
FIXTURE_MODELS = Path(__file__).resolve().parent / "fixtures" / "models"
H, W = 48, 64


# ---------------------------------------------------------------------------------------
# fakes and helpers
# ---------------------------------------------------------------------------------------
class FakeResult:
    def __init__(self, mask: np.ndarray, timings: dict, palette: np.ndarray) -> None:
        self.mask = mask
        self.timings = timings
        self.palette = palette
        self.class_names = tuple(f"class{i}" for i in range(len(palette)))

    def overlay(self, frame=None, alpha=0.5):
        return ops.overlay(frame, self.mask, viz.palette_for(self.palette), alpha)

    def colorize(self):
        return ops.colorize(self.mask, viz.palette_for(self.palette))


class FakeSegmenter:
    """Class of a pixel = its first channel // 64 (4 classes), computed from per-class
    scores at quarter resolution, like a real model.  ``delay`` simulates inference time;
    ``fail_at`` raises FrameError on that call (0-based)."""

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay = delay
        self.fail_at = fail_at
        self.calls = 0
        self.threads: set = set()
        self.palette = viz.default_palette(4)

    def scores(self, frame: np.ndarray) -> np.ndarray:
        small = frame[::4, ::4, 0].astype(np.float32)
        return np.stack([-np.abs(small - (c * 64 + 32)) for c in range(4)], axis=-1)

    def run(self, frame, *, score_filter=None):
        if self.fail_at is not None and self.calls == self.fail_at:
            self.calls += 1
            raise FrameError("fake: bad frame")
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        t0 = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        scores = self.scores(frame)
        if score_filter is not None:
            scores = score_filter(scores, 1.0, 0)
        mask = ops.postprocess(np.ascontiguousarray(scores, dtype=np.float32), frame.shape[:2], kind="logits")
        return FakeResult(mask, {"pre": 0.1, "infer": (time.perf_counter() - t0) * 1000, "post": 0.1}, self.palette)


class NoisySegmenter(FakeSegmenter):
    """Two classes (left / right half) with per-frame score noise, int8-quantised like a
    real int8 model (scale 0.05, zero point -5): argmax flickers at noisy pixels."""

    SCALE, ZERO_POINT = 0.05, -5

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma
        self.palette = viz.default_palette(2)

    def run(self, frame, *, score_filter=None):
        rng = np.random.default_rng(self.calls)
        self.calls += 1
        h, w = frame.shape[0] // 4, frame.shape[1] // 4
        clean = np.zeros((h, w, 2), np.float32)
        clean[:, : w // 2, 0] = 1.0
        clean[:, w // 2:, 1] = 1.0
        noisy = clean + rng.normal(0.0, self.sigma, clean.shape).astype(np.float32)
        q = np.clip(np.round(noisy / self.SCALE) + self.ZERO_POINT, -128, 127).astype(np.int8)
        scores = q if score_filter is None else score_filter(q, self.SCALE, self.ZERO_POINT)
        mask = ops.postprocess(np.ascontiguousarray(scores), frame.shape[:2], kind="logits")
        return FakeResult(mask, {"pre": 0.0, "infer": 0.0, "post": 0.0}, self.palette)


def level(i: int) -> int:
    """Grey level of frame i of the generated clips (distinct after lossy compression)."""
    return 10 + 6 * i


def write_clip(path: Path, n: int, fourcc: str = "MJPG", fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((H, W, 3), level(i), np.uint8)
        frame[:, : W // 2, 1] = 255 - level(i)  # some structure for the codec
        writer.write(frame)
    writer.release()
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not playable"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def video_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("mtkseg-video")]


def wait_no_video_threads(timeout: float = 2.0) -> list:
    deadline = time.monotonic() + timeout
    while video_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return video_threads()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi", 40)


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield
    gc.collect()
    assert wait_no_video_threads() == [], "a test left pipeline threads running"


# ---------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------
def test_open_source_video_file(clip: Path) -> None:
    with video.open_source(clip) as src:
        assert (src.kind, src.live, src.fps, src.frame_count, src.size) == ("file", False, 25.0, 40, (H, W))
        frames = list(src)
    assert [f.index for f in frames] == list(range(40))
    assert [f.timestamp_ms for f in frames[:3]] == pytest.approx([0.0, 40.0, 80.0])
    assert all(abs(float(f.image[:, W // 2:].mean()) - level(f.index)) < 3 for f in frames)
    assert frames[0].size == (H, W) and frames[0].image.dtype == np.uint8


def test_open_source_every_skips_with_grab(clip: Path) -> None:
    src = video.open_source(clip)
    frames = list(src.frames(every=3))
    assert [f.index for f in frames] == list(range(0, 40, 3))
    assert src.skipped == 40 - len(frames)
    assert all(abs(float(f.image[:, W // 2:].mean()) - level(f.index)) < 3 for f in frames)
    with pytest.raises(SourceError, match="only once"):
        list(src)
    src.close()


def test_open_source_folder_glob_image_and_iterables(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        cv2.imwrite(str(folder / f"f_{i}.png"), np.full((H, W, 3), i, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    src = video.open_source(folder, fps=10)
    assert (src.kind, src.frame_count, src.live) == ("images", 3, False)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.timestamp_ms for f in frames] == [0.0, 100.0, 200.0]
    assert [int(f.image[0, 0, 0]) for f in video.open_source(str(folder / "f_*.png"))] == [1, 2, 10]
    assert len(list(video.open_source(folder / "f_2.png"))) == 1

    arr = np.zeros((5, H, W, 3), np.uint8)
    src = video.open_source(arr)
    assert src.kind == "iterable" and src.frame_count == 5 and len(list(src)) == 5
    gen_src = video.open_source(np.zeros((H, W, 3), np.uint8) for _ in range(4))
    assert gen_src.frame_count is None and len(list(gen_src)) == 4


def test_open_source_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="nope.mp4"):
        video.open_source(missing)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="junk.mp4"):
        video.open_source(junk)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        video.open_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="camera 97"):
        video.open_source(97)
    with pytest.raises(InvalidArgumentError, match="single image"):
        video.open_source(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(InvalidTypeError):
        video.open_source(3.5)
    with pytest.raises(InvalidTypeError):
        video.open_source(True)
    with pytest.raises(InvalidArgumentError, match="fps"):
        video.open_source([np.zeros((H, W, 3), np.uint8)], fps=0)
    with pytest.raises(SourceError, match="item 1 is a str"):
        list(video.open_source([np.zeros((H, W, 3), np.uint8), "frame"]))


def test_camera_and_url_sources_are_live() -> None:
    # No camera or stream server here: check the classification, and that failures name the source.
    with pytest.raises(SourceError, match="rtsp://127.0.0.1:9/none"):
        video.open_source("rtsp://127.0.0.1:9/none")
    assert video.sources._URL_RE.match("HTTPS://host/stream.mjpg")
    assert not video.sources._URL_RE.match("file.mp4")


def test_http_url_source(clip: Path) -> None:
    """A video file served over HTTP: a URL source that ends normally, every frame delivered."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
        with video.open_source(url) as src:  # a file over HTTP: finite, so file mode by default
            assert (src.kind, src.live, src.finite, src.frame_count, src.name) == ("url", False, True, 40, url)
        s = video.stream(FakeSegmenter(), url)
        assert [f.index for f, _ in s] == list(range(40))
        with video.open_source(url) as src:
            assert [f.timestamp_ms for _, f in zip(range(2), src)] == [0.0, 40.0]
        with video.open_source(url, live=True) as src:
            assert src.live
        with pytest.raises(SourceError, match="missing.avi"):
            video.open_source(url.replace(clip.name, "missing.avi"))
    finally:
        server.shutdown()
        server.server_close()


def test_real_clip_source() -> None:
    require_shared(REAL_CLIP)
    with video.open_source(REAL_CLIP) as src:
        assert src.size == (540, 960) and src.fps == 25.0 and src.frame_count == 221
        ts = [f.timestamp_ms for _, f in zip(range(5), src)]
    assert ts == pytest.approx([0, 40, 80, 120, 160])


# ---------------------------------------------------------------------------------------
# pipeline: file mode
# ---------------------------------------------------------------------------------------
def test_file_mode_keeps_order_and_every_frame(clip: Path) -> None:
    seg = FakeSegmenter()
    with video.stream(seg, clip) as frames:
        out = [(f, r) for f, r in frames]
        stats = frames.stats
    assert [f.index for f, _ in out] == list(range(40))
    for f, r in out:  # each result belongs to its frame
        assert r.mask.shape == (H, W)
        assert abs(float(f.image[:, W // 2:].mean()) - level(f.index)) < 3
        centres = np.arange(4) * 64 + 32
        expected = np.argmin(np.abs(f.image[::4, ::4, 0, None].astype(int) - centres), axis=-1)
        assert np.array_equal(r.mask[::4, ::4], expected.astype(np.uint8))
    assert (stats.frames_read, stats.frames_processed, stats.frames_dropped) == (40, 40, 0)
    assert seg.threads == {"mtkseg-video-infer-0"}
    assert set(stats.latency()) >= {"read", "pre", "infer", "post", "latency"}


def test_file_mode_backpressure_bounds_memory() -> None:
    produced = []

    def frames():
        for i in range(30):
            produced.append(i)
            yield np.full((H, W, 3), i, np.uint8)

    with video.stream(FakeSegmenter(), frames(), queue_size=2) as s:
        it = iter(s)
        next(it)
        time.sleep(0.3)  # the consumer stalls: the reader must stop after filling the queues
        # consumed + out queue + finishing + worker→finisher slot + inferring + in queue + reader
        assert len(produced) <= 1 + 2 + 1 + 1 + 1 + 2 + 2
        rest = [f.index for f, _ in it]
    assert rest == list(range(1, 30))


def test_stages_overlap() -> None:
    """Decode, inference and the consumer's work run concurrently: with 10 ms per stage
    (sleeps, which release the GIL like OpenCV decoding and LiteRT invoke do), 20 frames
    take ~0.2 s pipelined instead of ~0.6 s one after the other."""
    n, stage_s = 20, 0.01

    def slow_decoder():
        for i in range(n):
            time.sleep(stage_s)
            yield np.full((H, W, 3), i, np.uint8)

    t0 = time.perf_counter()
    count = 0
    for _ in video.stream(FakeSegmenter(delay=stage_s), slow_decoder()):
        time.sleep(stage_s)  # the consumer's encoding
        count += 1
    elapsed = time.perf_counter() - t0
    assert count == n
    assert elapsed < 0.7 * (3 * n * stage_s), f"stages did not overlap: {elapsed:.3f} s for {n} frames"


def test_every_and_max_frames(clip: Path) -> None:
    s = video.stream(FakeSegmenter(), clip, every=4)
    assert [f.index for f, _ in s] == list(range(0, 40, 4))
    assert (s.stats.frames_read, s.stats.frames_skipped, s.stats.frames_processed) == (10, 30, 10)
    s = video.stream(FakeSegmenter(), clip, every=2, max_frames=5)
    assert [f.index for f, _ in s] == [0, 2, 4, 6, 8]
    assert s.stats.frames_processed == 5


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"every": 0}, InvalidArgumentError),
        ({"every": 1.5}, InvalidArgumentError),
        ({"max_frames": 0}, InvalidArgumentError),
        ({"queue_size": 0}, InvalidArgumentError),
        ({"live": "yes"}, InvalidTypeError),
        ({"smoothing": "median"}, InvalidArgumentError),
        ({"smoothing": 3}, InvalidTypeError),
        ({"smoothing": "mode3", "ema_momentum": 0.5}, InvalidArgumentError),
        ({"smoothing": "ema", "ema_momentum": 1.0}, InvalidArgumentError),
        ({"live": True, "realtime": True}, InvalidArgumentError),  # iterable without fps
    ],
)
def test_stream_validates_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        video.stream(FakeSegmenter(), [np.zeros((H, W, 3), np.uint8)], **kwargs)


def test_stream_rejects_non_segmenter() -> None:
    with pytest.raises(InvalidTypeError, match="Segmenter"):
        video.stream(object(), [np.zeros((H, W, 3), np.uint8)])


# ---------------------------------------------------------------------------------------
# pipeline: live mode
# ---------------------------------------------------------------------------------------
def test_live_mode_drops_stale_frames() -> None:
    n = 300

    def fast_camera():  # ~1 frame per ms, inference takes 10 ms
        for i in range(n):
            time.sleep(0.001)
            yield np.full((H, W, 3), i % 256, np.uint8)

    s = video.stream(FakeSegmenter(delay=0.01), fast_camera(), live=True)
    indices = [f.index for f, _ in s]
    st = s.stats
    assert st.live and st.frames_read == n
    assert st.frames_dropped > n // 2
    assert st.frames_processed == len(indices) and st.frames_read == st.frames_processed + st.frames_dropped
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert indices[-1] == n - 1  # the newest frame is always processed
    assert st.percentiles("latency")["p50"] < 60  # about one inference, not a growing backlog (seconds)


def test_live_file_is_paced_at_source_fps(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "fast.avi", 12, fps=100.0)
    t0 = time.perf_counter()
    s = video.stream(FakeSegmenter(), clip, live=True)
    assert s.realtime
    assert len(list(s)) >= 1
    assert time.perf_counter() - t0 >= 0.1  # 12 frames at 100 fps take at least 0.11 s


def test_live_mode_max_frames() -> None:
    def endless():
        i = 0
        while True:
            time.sleep(0.001)
            i += 1
            yield np.full((H, W, 3), i % 256, np.uint8)

    s = video.stream(FakeSegmenter(delay=0.005), endless(), live=True, max_frames=7)
    assert len(list(s)) == 7 and s.stats.frames_processed == 7


# ---------------------------------------------------------------------------------------
# shutdown: threads never outlive the iterator
# ---------------------------------------------------------------------------------------
def test_break_stops_threads(clip: Path) -> None:
    for frame, _ in video.stream(FakeSegmenter(delay=0.005), clip):
        assert len(video_threads()) == 3  # read, infer, finish
        if frame.index == 3:
            break
    assert wait_no_video_threads(0.5) == []


def test_break_from_endless_live_source_stops_threads() -> None:
    def endless():
        while True:
            yield np.zeros((H, W, 3), np.uint8)

    for i, _ in enumerate(video.stream(FakeSegmenter(), endless(), live=True)):
        if i == 2:
            break
    assert wait_no_video_threads(0.5) == []


def test_close_and_context_manager_stop_threads(clip: Path) -> None:
    s = video.stream(FakeSegmenter(), clip)
    next(iter(s))
    assert len(video_threads()) == 3  # read, infer, finish
    s.close()
    assert video_threads() == [] and s.closed
    assert list(s) == []  # a closed stream is exhausted
    with pytest.raises(RuntimeError):
        with video.stream(FakeSegmenter(), clip) as s2:
            for _ in s2:
                raise RuntimeError("user code failed")
    assert video_threads() == []


def test_unstarted_stream_releases_source(clip: Path) -> None:
    s = video.stream(FakeSegmenter(), clip)
    source = s.source
    s.close()
    assert source._closed and video_threads() == []


# ---------------------------------------------------------------------------------------
# robustness
# ---------------------------------------------------------------------------------------
def truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out = path.with_name("truncated" + path.suffix)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def test_codec_probe_is_cached_and_quiet(clip: Path, tmp_path: Path, monkeypatch, capfd) -> None:
    """Codecs are probed once per process with FFmpeg/OpenCV's stderr muted: writing an .mp4
    with the pip wheels (no H.264 encoder) falls back to mp4v without printing errors."""
    from mtkseg.video import _encoders, sinks

    monkeypatch.setitem(sys.modules, "av", None)  # the OpenCV path (PyAV missing)
    monkeypatch.setattr(_encoders, "_warned", True)
    monkeypatch.setattr(sinks, "_CODEC_WORKS", {})
    assert sinks.codec_available("MJPG", ".avi") and not sinks.codec_available("ZZZZ", ".avi")
    assert sinks._CODEC_WORKS == {("MJPG", ".avi"): True, ("ZZZZ", ".avi"): False}
    capfd.readouterr()
    sink = video.VideoSink(tmp_path / "out.mp4")
    video.process(clip, FakeSegmenter(), sink=sink, max_frames=5)
    err = capfd.readouterr().err
    assert sink.fourcc in ("avc1", "mp4v") and count_frames(tmp_path / "out.mp4") == 5
    assert "VIDEOIO" not in err and "encoder" not in err, err
    assert sinks._CODEC_WORKS[("avc1", ".mp4")] == (sink.fourcc == "avc1")


def test_truncated_file_ends_cleanly_with_playable_output(clip: Path, tmp_path: Path) -> None:
    bad = truncate(clip, 0.7)
    readable = count_frames(bad)
    assert 0 < readable < 40
    out = tmp_path / "out.mp4"
    stats = video.process(bad, FakeSegmenter(), sink=out, on_error="warn")
    assert isinstance(stats.error, StreamError) and "40" in str(stats.error)
    assert stats.frames_processed == readable
    assert count_frames(out) == readable
    assert video_threads() == []

    with pytest.raises(InvalidArgumentError, match="on_error"):
        video.process(bad, FakeSegmenter(), on_error="ignore")

    out2 = tmp_path / "out2.avi"
    with pytest.raises(StreamError, match="truncated") as info:
        video.process(bad, FakeSegmenter(), sink=out2)
    assert info.value.stats.frames_processed == readable
    assert count_frames(out2) == readable


def test_iterator_reports_source_failure_after_good_frames() -> None:
    def failing():
        for i in range(5):
            yield np.full((H, W, 3), i, np.uint8)
        raise OSError("camera unplugged")

    s = video.stream(FakeSegmenter(), failing())
    got = []
    with pytest.raises(StreamError, match="camera unplugged"):
        for f, _ in s:
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4]
    assert isinstance(s.stats.error, StreamError) and s.closed


def test_segmenter_error_is_raised_in_order(clip: Path) -> None:
    s = video.stream(FakeSegmenter(fail_at=5), clip)
    got = []
    with pytest.raises(FrameError):
        for f, _ in s:
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4] and isinstance(s.stats.error, FrameError)


def test_keyboard_interrupt_finalises_output(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.avi"
    sink = video.VideoSink(out)

    def interrupt(frame: Frame, _result) -> None:
        if frame.index == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        video.process(clip, FakeSegmenter(delay=0.002), sink=sink, callback=interrupt)
    stats = info.value.stats
    assert stats.interrupted and stats.error is None
    assert 11 <= stats.frames_processed < 40  # the frames in flight were finished, no new ones read
    assert sink.frames_written == stats.frames_processed == count_frames(out)
    assert video_threads() == []


# ---------------------------------------------------------------------------------------
# smoothing
# ---------------------------------------------------------------------------------------
def mean_flicker(masks: list) -> float:
    return float(np.mean([video.flicker(a, b) for a, b in zip(masks, masks[1:])]))


def test_smoothing_reduces_flicker_on_noisy_sequence() -> None:
    frames = [np.zeros((64, 96, 3), np.uint8)] * 30
    results = {}
    for mode in (None, "ema", "mode3"):
        s = video.stream(NoisySegmenter(), frames, smoothing=mode)
        masks = [r.mask.copy() for _, r in s]
        results[mode] = mean_flicker(masks)
        assert s.stats.flicker == pytest.approx(results[mode])
    assert results[None] > 0.1
    assert results["ema"] < 0.5 * results[None]
    assert results["mode3"] < 0.8 * results[None]


def test_ema_smoother_matches_reference() -> None:
    sm = video.EMASmoother(momentum=0.75)
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, (4, 5, 3)).astype(np.int8) for _ in range(4)]
    scale, zp = 0.1, 3
    ref = None
    for x in xs:
        deq = (x.astype(np.float32) - zp) * scale
        ref = deq if ref is None else 0.75 * ref + 0.25 * deq
        got = sm.score_filter(x, scale, zp)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    sm.reset()
    np.testing.assert_allclose(sm.score_filter(xs[0], scale, zp), (xs[0].astype(np.float32) - zp) * scale, atol=1e-6)
    # float scores ignore a zero quantisation scale (TFLite float tensors report 0.0)
    f = rng.normal(size=(4, 5, 3)).astype(np.float32)
    sm.reset()
    np.testing.assert_allclose(sm.score_filter(f, 0.0, 0), f)
    with pytest.raises(InvalidArgumentError):
        sm.score_filter(np.zeros((4, 5), np.float32), 1.0, 0)


def test_mode3_smoother_majority_and_reset() -> None:
    sm = video.Mode3Smoother()
    a = np.zeros((2, 3), np.uint8)
    b = np.ones((2, 3), np.uint8)
    c = np.full((2, 3), 2, np.uint8)
    assert np.array_equal(sm.smooth_mask(a), a)
    assert np.array_equal(sm.smooth_mask(b), b)  # two frames: passes through
    assert np.array_equal(sm.smooth_mask(a), a)  # a, b, a -> a
    assert np.array_equal(sm.smooth_mask(b), b)  # b, a, b -> b
    assert np.array_equal(sm.smooth_mask(c), c)  # a, b, c all differ -> newest
    blip = sm.smooth_mask(b.copy())              # b, c, b -> b
    assert np.array_equal(blip, b)
    assert np.array_equal(sm.smooth_mask(np.zeros((4, 4), np.uint8)), np.zeros((4, 4)))  # size change restarts
    with pytest.raises(InvalidArgumentError):
        sm.smooth_mask(np.zeros((2, 3), np.int32))


def test_flicker_measure() -> None:
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[:2] = 1
    assert video.flicker(a, b) == pytest.approx(0.2)
    with pytest.raises(InvalidArgumentError):
        video.flicker(a, np.zeros((5, 5), np.uint8))


# ---------------------------------------------------------------------------------------
# sinks, process, stats
# ---------------------------------------------------------------------------------------
def test_process_writes_video_masks_and_callback(clip: Path, tmp_path: Path) -> None:
    seen = []
    vsink = video.VideoSink(tmp_path / "sub" / "out.mp4")
    msink = video.MaskSink(tmp_path / "masks")
    stats = video.process(clip, FakeSegmenter(), sink=[vsink, msink], callback=lambda f, r: seen.append(f.index))
    assert seen == list(range(40)) and stats.frames_processed == 40
    assert vsink.fourcc in video.VIDEO_CODECS[".mp4"] and vsink.size == (H, W) and vsink.fps == 25.0
    cap = cv2.VideoCapture(str(tmp_path / "sub" / "out.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (W, H)
    cap.release()
    assert count_frames(tmp_path / "sub" / "out.mp4") == 40
    pngs = sorted((tmp_path / "masks").glob("*.png"))
    assert len(pngs) == 40 and pngs[0].name == "000000.png"
    mask = cv2.imread(str(pngs[7]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 2, 3}
    assert "write" in stats.latency()


def test_process_path_sinks_and_fps_requirement(tmp_path: Path) -> None:
    frames = [np.full((H, W, 3), i * 20, np.uint8) for i in range(6)]
    with pytest.raises(InvalidArgumentError, match="fps"):
        video.process(frames, FakeSegmenter(), sink=tmp_path / "a.avi")
    stats = video.process(frames, FakeSegmenter(), sink=[tmp_path / "a.avi", tmp_path / "m"], fps=12)
    assert stats.frames_processed == 6
    assert count_frames(tmp_path / "a.avi") == 6
    assert len(list((tmp_path / "m").glob("*.png"))) == 6


def test_video_sink_validation(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="codec"):
        video.VideoSink(tmp_path / "out.xyz")
    with pytest.raises(InvalidArgumentError, match="codec"):
        video.VideoSink(tmp_path / "out.mp4", codec="toolong")
    with pytest.raises(InvalidArgumentError, match="render"):
        video.VideoSink(tmp_path / "out.mp4", render="sepia")
    with pytest.raises(InvalidArgumentError, match="alpha"):
        video.VideoSink(tmp_path / "out.mp4", alpha=2)
    with pytest.raises(InvalidArgumentError, match="pattern"):
        video.MaskSink(tmp_path / "m", pattern="{frame}.png")
    with pytest.raises(InvalidTypeError):
        video.CallbackSink(42)
    frames = [np.zeros((H, W, 3), np.uint8), np.zeros((H + 2, W, 3), np.uint8)]
    with pytest.raises(InvalidArgumentError, match="one frame size"):
        video.process(frames, FakeSegmenter(), sink=video.VideoSink(tmp_path / "out.avi", fps=5))
    assert count_frames(tmp_path / "out.avi") == 1


def test_video_sink_render_modes(clip: Path, tmp_path: Path) -> None:
    sink = video.VideoSink(tmp_path / "sbs.avi", render="side-by-side")
    video.process(clip, FakeSegmenter(), sink=sink, max_frames=3)
    assert sink.size == (H, 2 * W) and count_frames(tmp_path / "sbs.avi") == 3
    custom = video.VideoSink(tmp_path / "bad.avi", render=lambda f, r: r.mask)
    with pytest.raises(InvalidArgumentError, match="HxWx3"):
        video.process(clip, FakeSegmenter(), sink=custom, max_frames=3)


def test_stream_stats_percentiles_and_summary() -> None:
    st = StreamStats("cam", live=True)
    st.start()
    for v in range(1, 101):
        st.record("infer", float(v))
    st.frames_processed = 100
    st.finish()
    pct = st.percentiles("infer")
    assert pct["p50"] == pytest.approx(50.5) and pct["p90"] == pytest.approx(90.1) and pct["p99"] == pytest.approx(99.01)
    assert st.percentiles("read") is None
    d = st.as_dict()
    assert d["frames_processed"] == 100 and d["latency_ms"]["infer"]["p50"] == pytest.approx(50.5)
    assert "infer" in st.summary() and "live mode" in st.summary()
    elapsed = st.elapsed_s
    time.sleep(0.01)
    assert st.elapsed_s == elapsed  # frozen after finish()


def test_real_clip_pipeline_with_fake_segmenter(tmp_path: Path) -> None:
    require_shared(REAL_CLIP)
    out = tmp_path / "real.mp4"
    stats = video.process(REAL_CLIP, FakeSegmenter(), sink=out, max_frames=20, smoothing="mode3")
    assert stats.frames_processed == 20 and count_frames(out) == 20
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (960, 540)
    cap.release()


# ---------------------------------------------------------------------------------------
# the real Segmenter
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def int8_model() -> Path:
    path = FIXTURE_MODELS / "int8_io.tflite"
    assert path.exists(), f"fixture model missing: run tests/fixtures/make_models.py ({path})"
    return path


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("smoothing", [None, "ema", "mode3"])
def test_real_segmenter_pipeline_matches_sequential_runs(int8_model: Path, tmp_path: Path, smoothing, workers) -> None:
    from mtkseg.segmenter import Segmenter

    clip = write_clip(tmp_path / "short.avi", 16)
    seg = Segmenter(str(int8_model), num_threads=2)
    with seg.stream(clip, smoothing=smoothing, queue_size=3, workers=workers) as s:  # results wait in the
        got = [(f, r) for f, r in s]                                                  # queues meanwhile
    assert s.stats.workers.startswith(f"{workers} worker")
    assert [f.index for f, _ in got] == list(range(16))
    reference = Segmenter(str(int8_model), num_threads=1)
    smoother = video.make_smoother(smoothing)
    for frame, result in got:
        filt = smoother.score_filter if smoother is not None else None
        mask = reference.run(frame.image, score_filter=filt).mask
        if smoother is not None:
            mask = smoother.smooth_mask(mask)
        assert result.mask.shape == (H, W)
        assert np.array_equal(result.mask, mask), f"frame {frame.index} differs from a sequential run"
    assert s.stats.frames_processed == 16 and set(s.stats.latency()) >= {"pre", "infer", "post"}


@pytest.mark.parametrize("model", ["float32.tflite", "nchw_output.tflite", "class_index.tflite"])
def test_workers_give_the_results_of_one_interpreter(tmp_path: Path, model: str) -> None:
    """Several interpreters (with other thread counts) produce exactly the masks and scores of
    one: float, NCHW and class-index outputs."""
    from mtkseg.segmenter import Segmenter

    clip = write_clip(tmp_path / "short.avi", 9)
    seg = Segmenter(str(FIXTURE_MODELS / model), num_threads=4)
    got = list(seg.stream(clip, workers=3))
    with seg.stream(clip) as automatic:
        assert automatic.stats.workers == "4 workers x 1 thread"  # min(num_threads, 4) x num_threads // 4
    reference = Segmenter(str(FIXTURE_MODELS / model), num_threads=1)
    for frame, result in got:
        expected = reference.run(frame.image)
        assert np.array_equal(result.mask, expected.mask), f"{model}: frame {frame.index} differs"
        if expected.has_scores:
            np.testing.assert_array_equal(result.confidence(), expected.confidence())


def test_workers_deliver_frames_before_a_bad_frame_then_its_error(int8_model: Path) -> None:
    from mtkseg.errors import FrameError
    from mtkseg.segmenter import Segmenter

    frames = [np.full((H, W, 3), 10 * i, np.uint8) for i in range(7)]
    frames[5] = frames[5].astype(np.float32)  # prepare() refuses it on the reader thread
    seen = []
    with pytest.raises(FrameError, match="uint8"):
        for frame, _ in video.stream(Segmenter(str(int8_model), num_threads=2), frames, workers=2):
            seen.append(frame.index)
    assert seen == [0, 1, 2, 3, 4]


def test_real_segmenter_live_mode_prepares_only_the_frames_it_keeps(int8_model: Path) -> None:
    """Live mode with a real Segmenter: one worker prepares and infers the newest frame; every
    delivered result is the one a sequential run gives for that frame, and drops are counted."""
    from mtkseg.segmenter import Segmenter

    frames = [smooth_frame(np.random.default_rng(i), H, W) for i in range(40)]

    def fast_camera():
        yield from frames  # far faster than inference

    seg = Segmenter(str(int8_model), num_threads=2)
    with seg.stream(fast_camera(), live=True) as s:
        got = [(f.index, r.mask) for f, r in s]
    assert s.stats.workers == "1 worker x 2 threads"
    assert s.stats.frames_dropped > 0 and s.stats.frames_processed + s.stats.frames_dropped == 40
    assert [i for i, _ in got] == sorted(i for i, _ in got) and got[-1][0] == 39  # the newest frame is never lost
    reference = Segmenter(str(int8_model), num_threads=1)
    for index, mask in got:
        np.testing.assert_array_equal(mask, reference.run(frames[index]).mask)
    assert set(s.stats.latency()) >= {"pre", "infer", "post"}


def test_worker_plan_and_its_validation(int8_model: Path) -> None:
    from mtkseg.segmenter import Segmenter
    from mtkseg.video.engines import MAX_AUTO_WORKERS, plan_workers

    def seg(threads):
        return Segmenter(str(int8_model), num_threads=threads)

    assert plan_workers(seg(1), False, None) == (1, None)  # one interpreter, its own threads
    assert plan_workers(seg(2), False, None) == (2, 1)
    assert plan_workers(seg(8), False, None) == (MAX_AUTO_WORKERS, 2)
    assert plan_workers(seg(8), True, None) == (1, None)  # live: latency first
    assert plan_workers(seg(2), False, 1) == (1, None)
    assert plan_workers(seg(6), False, 3) == (3, 2)
    assert plan_workers(FakeSegmenter(), False, None) == (1, None)  # run() only

    class OnGpu:  # a staged segmenter whose model runs on a GPU delegate: one worker, its own
        num_threads, delegate = 8, "gpu (libtensorflowlite_gpu_delegate.so)"

        def run(self, frame):
            raise AssertionError("not called")

        prepare = infer = finish = replicate = run

    from mtkseg.video.engines import StagedEngine

    assert plan_workers(OnGpu(), False, None) == (1, None)
    assert repr(StagedEngine(OnGpu(), None, 1, None)) == "1 worker on gpu (libtensorflowlite_gpu_delegate.so)"
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InvalidArgumentError, match="workers"):
            plan_workers(seg(2), False, bad)
    with pytest.raises(InvalidArgumentError, match="live mode"):
        video.stream(seg(2), [np.zeros((H, W, 3), np.uint8)], live=True, workers=2)
    with pytest.raises(InvalidArgumentError, match="only runs whole frames"):
        video.stream(FakeSegmenter(), [np.zeros((H, W, 3), np.uint8)], workers=2)


def test_staged_segmenter_without_a_pool_gets_its_replicas_closed(int8_model: Path, tmp_path: Path) -> None:
    """A Segmenter-like wrapper (prepare/infer/finish/replicate, no replica pool): the stream
    opens its worker replicas itself and closes them when it ends."""
    from mtkseg.segmenter import Segmenter

    class Wrapped:
        opened: list = []

        def __init__(self, seg):
            self.seg, self.num_threads, self.delegate, self.closed = seg, seg.num_threads, seg.delegate, False

        def run(self, frame, **kw):
            return self.seg.run(frame, **kw)

        def prepare(self, frame):
            return self.seg.prepare(frame)

        def infer(self, prepared):
            return self.seg.infer(prepared)

        def finish(self, prepared, output, **kw):
            return self.seg.finish(prepared, output, **kw)

        def replicate(self, num_threads=None):
            replica = Wrapped(self.seg.replicate(num_threads=num_threads))
            Wrapped.opened.append(replica)
            return replica

        def close(self):
            self.closed = True
            self.seg.close()

    clip = write_clip(tmp_path / "short.avi", 6)
    wrapped = Wrapped(Segmenter(str(int8_model), num_threads=2))
    got = [r.mask for _, r in video.stream(wrapped, clip)]
    assert len(Wrapped.opened) == 2 and all(r.closed for r in Wrapped.opened)
    reference = Segmenter(str(int8_model), num_threads=1)
    expected = [reference.run(f.image).mask for f in video.open_source(clip)]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected)) and len(got) == 6


def test_replicas_are_reused_and_closed_with_the_segmenter(int8_model: Path, tmp_path: Path) -> None:
    from mtkseg.segmenter import Segmenter

    clip = write_clip(tmp_path / "short.avi", 4)
    seg = Segmenter(str(int8_model), num_threads=2)
    list(seg.stream(clip, workers=2))
    first = seg.replicas(2, 1)
    list(seg.stream(clip, workers=2))
    assert seg.replicas(2, 1) == first and all(not r.closed for r in first)
    seg.close()
    assert all(r.closed for r in first)


def test_workers_end_cleanly_on_truncation_break_and_close(int8_model: Path, clip: Path, tmp_path: Path) -> None:
    """The staged path with 3 interpreters: a truncated file still writes every readable frame
    and reports the error; breaking out or closing mid-stream leaves no thread behind; a
    Segmenter closed under a running stream fails it with a typed error."""
    from mtkseg.errors import ModelError
    from mtkseg.segmenter import Segmenter

    seg = Segmenter(str(int8_model), num_threads=3)
    bad = truncate(clip, 0.7)
    readable = count_frames(bad)
    out = tmp_path / "out.avi"
    stats = video.process(bad, seg, sink=out, on_error="warn", workers=3)
    assert isinstance(stats.error, StreamError) and stats.workers == "3 workers x 1 thread"
    assert stats.frames_processed == readable == count_frames(out)
    assert wait_no_video_threads() == []

    for frame, _ in seg.stream(clip, workers=3):
        assert len(video_threads()) == 5  # read, 3 x infer, finish
        if frame.index == 4:
            break
    assert wait_no_video_threads() == []
    s = seg.stream(clip, workers=3)
    next(iter(s))
    s.close()
    assert video_threads() == [] and s.closed

    doomed = Segmenter(str(int8_model), num_threads=2)
    got = []
    with pytest.raises(ModelError, match="closed"):
        for frame, _ in doomed.stream(clip, workers=2):
            got.append(frame.index)
            if frame.index == 2:
                doomed.close()
    assert got[:3] == [0, 1, 2] and got == list(range(len(got)))
    assert wait_no_video_threads() == []


def test_real_segmenter_process_real_clip(int8_model: Path, tmp_path: Path) -> None:
    from mtkseg.segmenter import Segmenter

    require_shared(REAL_CLIP)
    out = tmp_path / "annotated.mp4"
    stats = video.process(REAL_CLIP, Segmenter(str(int8_model)), sink=out, every=10, smoothing="ema")
    assert stats.frames_processed == 23 and stats.frames_skipped == 221 - 23
    assert count_frames(out) == 23


# ---------------------------------------------------------------------------------------
# whole-pipeline masks against an independent reference (tests/fixtures/reference.py: OpenCV
# resize + colour conversion, numpy normalisation/quantisation from the bare Interpreter's
# tensor details, a bare ai_edge_litert Interpreter, np.argmax, cv2 INTER_NEAREST; temporal
# smoothing by the documented rules of mtkseg.video.smoothing; no mtkseg code)
# ---------------------------------------------------------------------------------------
#: real dash-cam frames 0, 30, ..., 210 (960x540)
CLIP_EVERY, CLIP_FRAMES = 30, 8
UNIT_NORM = ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))  # the documented default for models without metadata

#: model -> (path, (mean, std) from its documentation, minimum mask agreement).  Each minimum is
#: just under the worst frame measured over smoothing None/ema/mode3 on the 8 clip frames:
#: float32 1.00000; int8_io 0.99977 (none), 0.99904 (ema), 0.99990 (mode3): 1-LSB input
#: rounding differences that the random weights amplify; camvid (the bundled default model,
#: output at 1/2 resolution, its uint8 input from the fixed-point resize: ±1 LSB from the
#: reference's float resize on ~1.3 % of values) 0.99200 (none), 0.99289 (ema), 0.99256 (mode3)
#: for v2.2 (v2.1: 0.98757 / 0.99319 / 0.98920).
#: The planted bugs (test_video_reference_tolerances_reject_plausible_bugs) reach at best
#: (float32 / int8_io / camvid, best frame, worst smoothing): BGR fed as RGB 0.707 / 0.949 /
#: 0.925, INTER_NEAREST input resize 0.911 / 0.965 / 0.988 (ema), smoothing dropped 0.934 / 0.963 / 0.960.
#: camvid's tolerance was measured on the committed model; a retrained one needs re-measuring
#: (v2.2's nearest-resize bug reached 0.988, above v2.1's 0.986 tolerance: hence 0.990).
VIDEO_REFERENCE_MODELS = {
    "float32": (FIXTURE_MODELS / "float32.tflite", UNIT_NORM, 0.9995),
    "int8_io": (FIXTURE_MODELS / "int8_io.tflite", UNIT_NORM, 0.999),
    "camvid": (DEFAULT_MODEL, None, 0.990),
}


def _video_reference(model: str, cls=Reference) -> tuple:
    path, norm, min_agree = VIDEO_REFERENCE_MODELS[model]
    assert path.exists(), path
    mean, std = norm if norm is not None else sidecar_normalization(str(path))
    return str(path), cls(str(path), mean=mean, std=std), min_agree


@pytest.fixture(scope="module")
def clip_frames() -> list:
    require_shared(REAL_CLIP)
    frames = decode_frames(REAL_CLIP, CLIP_EVERY, CLIP_FRAMES)
    assert len(frames) == CLIP_FRAMES and frames[0].shape == (540, 960, 3)
    return frames


@pytest.mark.parametrize("smoothing", [None, "ema", "mode3"])
@pytest.mark.parametrize("model", sorted(VIDEO_REFERENCE_MODELS))
def test_stream_masks_match_independent_reference(model: str, smoothing, clip_frames: list) -> None:
    """seg.stream() over real frames (decoded once here and fed as an iterable, so both sides
    see identical pixels), with its default workers, against the reference mask of every frame."""
    from mtkseg.segmenter import Segmenter

    path, ref, min_agree = _video_reference(model)
    with Segmenter(path).stream(iter(clip_frames), smoothing=smoothing) as s:
        got = [(f.index, r.mask) for f, r in s]
    assert [i for i, _ in got] == list(range(CLIP_FRAMES))
    expected = stream_masks(ref, clip_frames, smoothing)
    agree = [agreement(m, e) for (_, m), e in zip(got, expected)]
    assert min(agree) >= min_agree, (model, smoothing, [round(a, 5) for a in agree])


@pytest.mark.parametrize("model", ["int8_io", "camvid"])
def test_process_file_writes_the_reference_masks(model: str, clip_frames: list, tmp_path: Path) -> None:
    """The file path end to end: video.process decodes the clip itself (every 30th frame) and
    writes class-index PNGs; each matches the reference on the frames cv2.VideoCapture decodes
    (test_file_source_decodes_what_cv2_and_pyav_decode shows these are the same pixels)."""
    from mtkseg.segmenter import Segmenter

    path, ref, min_agree = _video_reference(model)
    stats = video.process(REAL_CLIP, Segmenter(path), sink=video.MaskSink(tmp_path / "masks"),
                          every=CLIP_EVERY, max_frames=CLIP_FRAMES)
    assert stats.frames_processed == CLIP_FRAMES
    for k, frame in enumerate(clip_frames):
        mask = cv2.imread(str(tmp_path / "masks" / f"{k * CLIP_EVERY:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == frame.shape[:2] and mask.dtype == np.uint8
        assert agreement(mask, ref.run(frame)) >= min_agree, (model, k)


def test_file_source_decodes_what_cv2_and_pyav_decode(clip_frames: list) -> None:
    """The file source's frames are exactly what a bare cv2.VideoCapture and PyAV (bgr24)
    decode (measured: identical, max |difference| 0), so feeding decoded frames above tests
    the file path too."""
    av = require_module("av")
    with video.open_source(REAL_CLIP) as src:
        ours = [(f.index, f.image) for f in src.frames(every=CLIP_EVERY)][:CLIP_FRAMES]
    assert [i for i, _ in ours] == [k * CLIP_EVERY for k in range(CLIP_FRAMES)]
    for (_, image), expected in zip(ours, clip_frames):
        np.testing.assert_array_equal(image, expected)
    with av.open(str(REAL_CLIP)) as container:
        decoded = [f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(video=0))
                   if i % CLIP_EVERY == 0 and i < CLIP_EVERY * CLIP_FRAMES]
    assert len(decoded) == CLIP_FRAMES
    for (_, image), expected in zip(ours, decoded):
        np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("model", sorted(VIDEO_REFERENCE_MODELS))
def test_video_reference_tolerances_reject_plausible_bugs(model: str, clip_frames: list) -> None:
    """Each tolerance above fails a plausible bug on every frame it affects: the buggy variant,
    computed with the reference, lands below it.  Measured, best frame of the bug: BGR as RGB
    0.707 (float32, ema) / 0.949 (int8_io, ema) / 0.925 (camvid, mode3); INTER_NEAREST input resize
    0.911 (float32, ema) / 0.965 (int8_io, ema) / 0.988 (camvid, ema); smoothing dropped (after
    its warm-up frames) 0.934 (float32, mode3) / 0.963 (int8_io, mode3) / 0.960 (camvid, mode3)."""
    _, good, min_agree = _video_reference(model)
    for smoothing in (None, "ema", "mode3"):
        expected = stream_masks(good, clip_frames, smoothing)
        for bug in (SwappedColourReference, NearestResizeReference):
            _, bad, _ = _video_reference(model, bug)
            agree = [agreement(m, e) for m, e in zip(stream_masks(bad, clip_frames, smoothing), expected)]
            assert max(agree) < min_agree, (model, smoothing, bug.__name__, [round(a, 5) for a in agree])
        if smoothing is not None:  # a pipeline that ignores smoothing=: equal on the warm-up frames only
            warmup = 1 if smoothing == "ema" else 2
            unsmoothed = stream_masks(good, clip_frames, None)
            agree = [agreement(m, e) for m, e in zip(unsmoothed, expected)]
            assert min(agree[:warmup]) == 1.0 and max(agree[warmup:]) < min_agree, (model, smoothing, agree)


def test_file_with_corrupt_middle_skips_bad_frames_and_reads_to_the_end(tmp_path, caplog):
    """256 KiB of garbage in the middle of an mp4: ffmpeg decodes 192 of 221 frames; mtkseg used
    to stop at frame 111 ("the file ended").  Now it skips the undecodable ones, counts them and
    warns once."""
    import logging
    import random

    from conftest import SHARED_DATA, require_shared

    from mtkseg.video import open_source, process

    clip = require_shared(SHARED_DATA / "videos" / "udacity_lanelines_solidWhiteRight.mp4")
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    rnd = random.Random(0)
    data[mid:mid + 256 * 1024] = bytes(rnd.getrandbits(8) for _ in range(256 * 1024))
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    cap = cv2.VideoCapture(str(bad))
    decodable = 0
    for _ in range(300):  # what OpenCV/ffmpeg can decode when reading on past errors
        ok, _img = cap.read()
        decodable += bool(ok)
    cap.release()
    assert 150 < decodable < 221
    with caplog.at_level(logging.WARNING, logger="mtkseg.video.sources"):
        with open_source(str(bad)) as src:
            frames = list(src)
            corrupt = src.corrupt
    assert len(frames) == decodable and corrupt > 0
    assert len(frames) + corrupt <= 221 and frames[-1].index < 221
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    warnings = [r for r in caplog.records if "skipping undecodable" in r.getMessage()]
    assert len(warnings) == 1
    stats = process(str(bad), FakeSegmenter(), [], live=False)
    assert stats.frames_processed == decodable and stats.frames_corrupt == corrupt
    assert stats.error is None and "corrupt" in stats.summary()


# ---------------------------------------------------------------------------------------
# H.264 through PyAV, OpenCV fallback
# ---------------------------------------------------------------------------------------
def _textured(i: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A moving colour texture: harder for the encoder than flat grey frames."""
    yy, xx = np.mgrid[0:h, 0:w]
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = (xx * 1.5 + i * 3) % 256
    f[..., 1] = (yy * 2 + i * 2) % 256
    f[..., 2] = 128 + 100 * np.sin((xx + yy + i * 4) / 15)
    return f


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


#: Measured: min 26.8 dB, mean 30.2 dB per frame on ``_textured`` (libx264 veryfast, crf 20, yuv420p).
H264_MIN_PSNR_DB = 24.0


@pytest.mark.parametrize("size", [(120, 160), (121, 161)])
def test_mp4_is_h264_yuv420p_faststart_and_matches_the_input(tmp_path: Path, size) -> None:
    av = require_module("av")
    frames = [_textured(i, *size) for i in range(30)]
    out = tmp_path / "out.mp4"
    sink = video.VideoSink(out, render=lambda frame, result: frame.image)
    stats = video.process(frames, FakeSegmenter(), sink=sink, fps=25)
    assert sink.codec.startswith("h264") and stats.codec == sink.codec and "h264" in stats.summary()
    assert stats.as_dict()["codec"] == sink.codec
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat"), "movflags=+faststart: the index comes first"
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(25.0)
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == 30
    h, w = size
    psnr = [_psnr(d[:h, :w], f) for d, f in zip(decoded, frames)]  # odd sizes are padded by one pixel
    assert min(psnr) >= H264_MIN_PSNR_DB, psnr
    assert not list(tmp_path.glob(".*part*")), "the temporary file was moved into place"


def test_h264_falls_back_to_opencv_when_pyav_is_missing(tmp_path: Path, monkeypatch, caplog) -> None:
    from mtkseg.video import _encoders

    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    monkeypatch.setattr(_encoders, "_warned", False)
    frames = [_textured(i) for i in range(8)]
    with caplog.at_level(logging.WARNING, logger="mtkseg.video"):
        for name in ("a.mp4", "b.mp4"):
            sink = video.VideoSink(tmp_path / name)
            stats = video.process(frames, FakeSegmenter(), sink=sink, fps=10)
            assert sink.fourcc in ("avc1", "mp4v") and sink.codec.endswith("(OpenCV)")
            assert stats.codec == sink.codec
            assert count_frames(tmp_path / name) == 8
    warnings = [r for r in caplog.records if "PyAV is not installed" in r.getMessage()]
    assert len(warnings) == 1 and "pip install av" in warnings[0].getMessage()


def test_explicit_codecs(tmp_path: Path) -> None:
    frames = [_textured(i) for i in range(5)]
    sink = video.VideoSink(tmp_path / "a.mp4", codec="mp4v")
    video.process(frames, FakeSegmenter(), sink=sink, fps=10)
    assert sink.codec == "mp4v (OpenCV)" and count_frames(tmp_path / "a.mp4") == 5
    sink = video.VideoSink(tmp_path / "b.avi", codec="mjpg")
    video.process(frames, FakeSegmenter(), sink=sink, fps=10)
    assert sink.fourcc == "MJPG" and count_frames(tmp_path / "b.avi") == 5
    with pytest.raises(InvalidArgumentError, match="H.264 needs"):
        video.VideoSink(tmp_path / "c.avi", codec="h264")
