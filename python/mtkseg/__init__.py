"""mtkseg: low-power semantic segmentation of road scenes on edge devices.

Quick start::

    import mtkseg
    seg = mtkseg.Segmenter("model.tflite")     # or Segmenter() for the bundled CamVid model
    result = seg.run(frame)                     # frame: HxWx3 uint8 BGR
    result.mask, result.overlay()
"""

__version__ = "0.1.0"

from . import _quiet  # noqa: E402

_quiet.configure_from_env()  # MTKSEG_LOG_LEVEL=debug: show mtkseg's debug log and LiteRT's native output

from . import errors, metrics, ops, viz  # noqa: E402
from .errors import MtksegError  # noqa: E402
from .result import SegmentationResult  # noqa: E402
from .options import SegmenterOptions  # noqa: E402
from .runtime import ModelInfo  # noqa: E402
from .segmenter import ModelOutput, PreparedFrame, Segmenter  # noqa: E402
from . import video  # noqa: E402  (after Segmenter: the pipeline uses it)
from .video import StreamOptions  # noqa: E402

__all__ = ["__version__", "errors", "metrics", "ops", "viz", "video", "MtksegError", "Segmenter", "SegmenterOptions",
           "StreamOptions", "SegmentationResult",
           "ModelInfo", "PreparedFrame", "ModelOutput"]
