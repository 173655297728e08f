"""Video stream processing: sources, an overlapped pipeline, temporal smoothing, sinks.

Quick start::

    import mtkseg
    from mtkseg import video

    seg = mtkseg.Segmenter("model.tflite")
    with video.stream(seg, "dashcam.mp4", smoothing="ema") as frames:   # or seg.stream(...)
        for frame, result in frames:
            ...                                   # frame.index, frame.timestamp_ms, result.mask
        print(frames.stats.summary())

    stats = video.process("dashcam.mp4", seg, sink="out.mp4")          # annotated video
    stats = video.process(0, seg, sink=video.MaskSink("masks/"), max_frames=100)  # camera 0

Modules: :mod:`~mtkseg.video.sources` (``open_source``, ``Frame``), :mod:`~mtkseg.video.pipeline`
(``stream``, ``VideoStream``), :mod:`~mtkseg.video.smoothing`, :mod:`~mtkseg.video.sinks`,
:mod:`~mtkseg.video.stats` (``StreamStats``), :mod:`~mtkseg.video.process`,
:mod:`~mtkseg.video.options` (``StreamOptions``), :mod:`~mtkseg.video.protocol` (what the
pipeline needs of a segmenter).
"""

from .options import DEFAULT_QUEUE_SIZE, StreamOptions
from .pipeline import VideoStream, stream
from .process import process
from .protocol import FrameSegmenter, RecurrentSegmenter, SegmenterLike, StagedSegmenter
from .sinks import CallbackSink, MaskSink, Sink, VideoSink, VIDEO_CODECS
from .smoothing import EMASmoother, Mode3Smoother, TemporalSmoother, flicker, make_smoother
from .sources import CaptureSource, Frame, ImageFolderSource, IterableSource, VideoSource, open_source
from .stats import StreamStats

__all__ = [
    "stream",
    "process",
    "VideoStream",
    "StreamOptions",
    "FrameSegmenter",
    "StagedSegmenter",
    "RecurrentSegmenter",
    "SegmenterLike",
    "DEFAULT_QUEUE_SIZE",
    "open_source",
    "Frame",
    "VideoSource",
    "CaptureSource",
    "ImageFolderSource",
    "IterableSource",
    "Sink",
    "VideoSink",
    "MaskSink",
    "CallbackSink",
    "VIDEO_CODECS",
    "TemporalSmoother",
    "EMASmoother",
    "Mode3Smoother",
    "make_smoother",
    "flicker",
    "StreamStats",
]
