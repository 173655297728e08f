"""SegmenterOptions / StreamOptions: declared once, validated once, passed whole; and the
layering rules they come with (video/ on a Protocol, runtime/ without viz)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

import mtkseg
from mtkseg import SegmenterOptions, StreamOptions
from mtkseg.errors import InvalidArgumentError, InvalidTypeError

from fixtures.reference import model_path

PKG = Path(mtkseg.__file__).resolve().parent


def test_keywords_and_options_build_the_same_object():
    opts = SegmenterOptions(model=model_path("float32"), delegate="cpu", fit="Letterbox", num_threads=1,
                            output_size=[30, 40])
    assert opts.fit == "letterbox" and opts.output_size == (30, 40)
    with mtkseg.Segmenter(model_path("float32"), delegate="cpu", fit="letterbox", num_threads=1,
                          output_size=(30, 40)) as a, mtkseg.Segmenter(options=opts) as b:
        assert a.options == b.options == opts
        frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
        assert np.array_equal(a.run(frame).mask, b.run(frame).mask)
        with a.replicate() as r:
            assert r.options == a.options.replace(num_threads=1)


def test_keywords_apply_on_top_of_options_and_unknown_names_are_refused():
    opts = SegmenterOptions(delegate="cpu", upsample="bilinear")
    with mtkseg.Segmenter(model_path("float32"), options=opts, num_threads=1) as seg:
        assert seg.options.upsample == "bilinear" and seg.options.num_threads == 1
    with pytest.raises(InvalidTypeError, match="'upsampel': not an option of SegmenterOptions"):
        mtkseg.Segmenter(model_path("float32"), upsampel="bilinear")
    with pytest.raises(InvalidTypeError, match="options: expected a mtkseg.SegmenterOptions"):
        mtkseg.Segmenter(options={"delegate": "cpu"})


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fit": "crop"}, InvalidArgumentError, "fit: expected one of"),
    ({"num_threads": True}, InvalidTypeError, "num_threads"),
    ({"num_threads": 0}, InvalidArgumentError, "num_threads"),
    ({"output_size": (0, 4)}, InvalidArgumentError, "output_size"),
    ({"prior": 1.5}, InvalidArgumentError, "prior"),
    ({"model": 3}, InvalidTypeError, "model"),
    ({"normalization": "bogus"}, InvalidArgumentError, "normalization"),
    ({"output": True}, InvalidTypeError, "output"),
])
def test_bad_options_fail_where_they_are_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        SegmenterOptions(**kwargs)


def test_options_pickle_and_are_frozen():
    opts = SegmenterOptions(model=b"bytes", delegate_options={"a": 1}, prior=np.full((4, 4), 0.5, np.float32))
    back = pickle.loads(pickle.dumps(opts))
    assert back == opts and back.model == b"bytes"
    with pytest.raises(Exception):
        opts.fit = "letterbox"  # type: ignore[misc]
    stream = StreamOptions(smoothing="EMA", ema_momentum=0.3, every=2)
    assert pickle.loads(pickle.dumps(stream)) == stream and stream.smoothing == "ema"


@pytest.mark.parametrize("kwargs, match", [
    ({"every": 0}, "every"), ({"max_frames": True}, "max_frames"), ({"queue_size": 0}, "queue_size"),
    ({"fps": -1}, "fps"), ({"workers": 0}, "workers"), ({"ema_momentum": 0.5}, "only meaningful"),
    ({"smoothing": "median"}, "smoothing"), ({"live": 1}, "live"),
])
def test_bad_stream_options(kwargs, match):
    with pytest.raises((InvalidArgumentError, InvalidTypeError), match=match):
        StreamOptions(**kwargs)


def test_stream_takes_options_whole(tmp_path):
    frames = [np.full((48, 64, 3), i * 20, np.uint8) for i in range(6)]
    with mtkseg.Segmenter(model_path("float32"), delegate="cpu", num_threads=1) as seg:
        with seg.stream(frames, options=StreamOptions(every=2, workers=1)) as s:
            assert [f.index for f, _ in s] == [0, 2, 4]
            assert s.options.every == 2


def test_video_calls_no_private_attribute_and_runtime_imports_no_viz():
    private = []
    for path in (PKG / "video").glob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            # self._x / cls._x are the module's own; any other obj._x reaches into someone else's.
            for m in re.finditer(r"\b(\w+)\._[a-z]\w*", code):
                if m.group(1) not in ("self", "s", "st", "cls", "_v", "np", "os", "cv2") and "__" not in m.group(0):
                    private.append(f"{path.name}:{n}: {m.group(0)}")
    allowed = {"s._", "video._encoders"}  # pipeline._State(s) copies its own stream's fields; a module path
    assert [p for p in private if not any(a in p for a in allowed)] == []
    for path in (PKG / "runtime").rglob("*.py"):
        assert not re.search(r"from \.\.viz|import viz|mtkseg\.viz", path.read_text()), path
