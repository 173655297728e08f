"""``mtkseg video``: segment a video file, camera, stream or image folder.

Examples::

    mtkseg video model.tflite dashcam.mp4 -o annotated.mp4 --smoothing ema
    mtkseg video model.tflite 0 --live --max-frames 300 --masks masks/
    mtkseg video default "frames/*.png" --fps 10 -o out.avi
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import _io
from ._signals import Terminated, stop_signals_as_interrupt
from ._types import positive_float, positive_int, unit_float
from .run import add_runtime_arguments, make_segmenter

HELP = "segment a video file, camera, RTSP/HTTP stream or image folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``mtkseg video``."""
    p.add_argument("model", metavar="MODEL", help="a .tflite segmentation model, or 'default' for the bundled one")
    p.add_argument("source", metavar="SOURCE",
                   help="video file, camera index (0), rtsp:// or http(s):// URL, image folder or quoted glob")
    g = p.add_argument_group("outputs")
    g.add_argument("-o", "--output", metavar="OUT", default=None,
                   help="annotated video to write (.mp4, .avi, .mkv, .mov, .webm); same size and fps as the source")
    g.add_argument("--masks", metavar="DIR", default=None, help="write each mask as DIR/<frame index>.png (class ids)")
    g.add_argument("--color-masks", action="store_true", help="write colour masks instead of class ids to --masks")
    g.add_argument("--render", choices=("overlay", "colorize", "side-by-side"), default="overlay",
                   help="what the output video shows (default overlay)")
    g.add_argument("--alpha", type=unit_float, default=0.5, help="overlay opacity (default 0.5)")
    g.add_argument("--legend", action="store_true", help="draw the class colours and names on the output video")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing -o file and existing masks in --masks (never the input)")
    g.add_argument("--codec", default=None, metavar="CODEC",
                   help="h264 (browser-playable, via PyAV; default for .mp4/.mov/.m4v/.mkv), or an OpenCV FourCC: "
                        "mp4v, mjpg (default for .avi), xvid, vp80 (default for .webm), vp90")
    g = p.add_argument_group("stream")
    g.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                   help="live mode: process only the newest frame, drop stale ones (default: on for cameras/URLs)")
    g.add_argument("--every", type=positive_int, default=1, metavar="N", help="process every N-th frame")
    g.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N processed frames")
    g.add_argument("--smoothing", choices=("none", "ema", "mode3"), default="none",
                   help="temporal smoothing: ema (class-score moving average) or mode3 (majority of 3 masks)")
    g.add_argument("--ema-momentum", type=float, default=None, metavar="M",
                   help="weight of the past for --smoothing ema, in [0, 1) (default 0.6)")
    g.add_argument("--fps", type=positive_float, default=None, help="frame rate of image folders/globs (for timestamps and -o)")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="interpreters inferring consecutive frames at once (file mode; default: automatic, "
                        "min(threads, 4) on the CPU, 1 in live mode); they share --threads")
    add_runtime_arguments(p)  # --delegate, --accelerator, --threads, --input-size: as in ``mtkseg run``
    p.add_argument("--json", action="store_true", help="print the final statistics as one JSON object")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _make_segmenter(args: argparse.Namespace) -> Any:
    """The Segmenter for ``args`` (a separate function so tests can substitute it)."""
    return make_segmenter(args)


def handler(args: argparse.Namespace) -> int:
    from ..errors import InvalidArgumentError, MtksegError
    from ..video import MaskSink, VideoSink, open_source, process

    if args.ema_momentum is not None and args.smoothing != "ema":
        raise InvalidArgumentError("--ema-momentum: only meaningful with --smoothing ema")
    overwrite = getattr(args, "overwrite", False)
    inputs = [args.source, args.model]
    # Outputs are checked before anything opens: refusing must not cost a model load, and must
    # happen before the writer could truncate a file.
    if args.output:
        _io.check_output(args.output, inputs=inputs, overwrite=overwrite, what="-o")
    if args.masks:
        _io.check_folder(args.masks, "*.png", overwrite=overwrite, what="--masks")
    source = open_source(args.source, live=args.live, fps=args.fps)  # fails fast, before loading the model
    try:
        sinks = []
        if args.output:
            sinks.append(VideoSink(args.output, codec=args.codec, render=args.render, alpha=args.alpha,
                                   overwrite=overwrite, legend=args.legend))
        if args.masks:
            sinks.append(MaskSink(args.masks, colorize=args.color_masks, overwrite=overwrite))
        segmenter = _make_segmenter(args)
    except BaseException:
        source.close()
        raise
    live = source.live
    try:
        with stop_signals_as_interrupt():  # SIGTERM/SIGHUP: stop like Ctrl-C, finalising the outputs
            stats = process(
                source, segmenter, sinks, progress=args.progress and not live, on_error="raise",
                live=args.live, every=args.every, max_frames=args.max_frames, workers=args.workers,
                smoothing=None if args.smoothing == "none" else args.smoothing, ema_momentum=args.ema_momentum,
            )
    except KeyboardInterrupt as exc:
        stats = getattr(exc, "stats", None)
        if stats is not None:
            _print_stats(stats, args.json)
        _report_outputs(sinks, args.json)
        how = f" ({exc.signame})" if isinstance(exc, Terminated) else ""
        print(f"mtkseg video: interrupted{how}; outputs hold every frame processed so far", file=sys.stderr)
        return exc.exit_code if isinstance(exc, Terminated) else 130
    except MtksegError as exc:
        stats = getattr(exc, "stats", None)
        if stats is None:  # failed before the stream started (e.g. a sink without fps)
            raise
        _print_stats(stats, args.json)
        _report_outputs(sinks, args.json)
        print(f"mtkseg video: error: {exc}", file=sys.stderr)
        print("mtkseg video: outputs hold every frame processed before the error", file=sys.stderr)
        return 1
    _print_stats(stats, args.json)
    _report_outputs(sinks, args.json)
    return 0


def _print_stats(stats: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(stats.as_dict()))
    else:
        print(stats.summary())


def _report_outputs(sinks: list, quiet: bool = False) -> None:
    """One line per output written (on stderr with ``--json``, so stdout stays parseable)."""
    from ..video import MaskSink, VideoSink

    out = sys.stderr if quiet else sys.stdout
    for s in sinks:
        if isinstance(s, VideoSink) and s.frames_written:
            h, w = s.size or (0, 0)
            print(f"wrote {s.path}: {s.frames_written} frames, {w}x{h}, {s.fps:g} fps, codec {s.codec}", file=out)
        elif isinstance(s, MaskSink):
            print(f"wrote {s.frames_written} masks to {s.directory}", file=out)


def register(subparsers) -> None:
    p = subparsers.add_parser("video", help=HELP, description=HELP + ".",
                              epilog="Exit status: 0 done, 1 error (outputs keep the frames done), 2 usage error (e.g. an "
                                     "existing output without --overwrite, or -o naming the input), 130 Ctrl-C, "
                                     "143 SIGTERM, 129 SIGHUP (outputs are finalised on all three).")
    add_arguments(p)
    p.set_defaults(func=handler)
