"""The ``GStreamerFilter`` commands this server runs: a subset of GStreamer elements, parsed as
``gst-launch`` parses one element (``videoflip method=clockwise``), done with PyAV/FFmpeg.

==============  =====  ==========================================================================
element         kind   properties (GStreamer's names, types and ranges) and how they are done
==============  =====  ==========================================================================
videoflip       video  ``method`` / ``video-direction`` (nick or number): FFmpeg ``transpose``,
                       ``hflip``, ``vflip``; ``automatic``/``auto``/``custom`` leave the picture
videobalance    video  ``contrast`` 0..2, ``brightness`` -1..1, ``hue`` -1..1, ``saturation``
                       0..2: GStreamer's own lookup tables on the YUV planes (numpy)
videocrop       video  ``top``, ``bottom``, ``left``, ``right`` (pixels): FFmpeg ``crop``
videorate       video  ``max-rate`` (fps), ``drop-only``: frames beyond the rate are dropped
videoscale      video  ``method``, ``add-borders``: no change on its own (as in KMS, where
                       nothing after the filter asks for another size)
capsfilter      video  ``caps=video/x-raw[,width=W][,height=H][,framerate=N/D]``: scaled with
                       swscale (a missing width or height keeps the aspect ratio), frames beyond
                       the rate dropped (KMS's ``videorate`` is drop-only too)
volume          audio  ``volume`` 0..10, ``mute``: samples scaled and clipped
==============  =====  ==========================================================================

Anything else is refused at ``create`` with KMS's error (40001 ``GStreamer element cannot be
created: ...``), naming the supported elements. ``setElementProperty`` converts its string as
KMS does: int, float, double and enum properties can be set, booleans and caps cannot
(``Property type not implemented``).
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from flowengine.media.engine.yuv import yuv_planes

INT_MAX = 2**31 - 1

FLIP_METHODS = (
    "none", "clockwise", "rotate-180", "counterclockwise", "horizontal-flip", "vertical-flip",
    "upper-left-diagonal", "upper-right-diagonal", "automatic",
)  # fmt: skip
ORIENTATIONS = (
    "identity", "90r", "180", "90l", "horiz", "vert", "ul-lr", "ur-ll", "auto", "custom",
)  # fmt: skip
SCALE_METHODS = (
    "nearest-neighbour", "bilinear", "4-tap", "lanczos", "bilinear2", "sinc", "hermite",
    "spline", "catrom", "mitchell",
)  # fmt: skip
_FLIP_FILTERS: tuple[tuple[tuple[str, str], ...], ...] = (
    (), (("transpose", "clock"),), (("hflip", ""), ("vflip", "")), (("transpose", "cclock"),),
    (("hflip", ""),), (("vflip", ""),), (("transpose", "cclock_flip"),),
    (("transpose", "clock_flip"),), (),
)  # fmt: skip
"""FFmpeg filters for each videoflip direction, by index of FLIP_METHODS."""


class CommandError(Exception):
    """A command or property value that cannot be used; ``message`` is KMS's text."""

    def __init__(self, message: str, *, not_implemented: bool = False):
        super().__init__(message)
        self.message = message
        self.not_implemented = not_implemented


@dataclass(frozen=True)
class Prop:
    type: str
    """``int``, ``double``, ``bool``, ``enum`` or ``caps``."""
    default: Any
    low: float = -math.inf
    high: float = math.inf
    nicks: tuple[str, ...] = ()
    gtype: str = ""
    """The enum's GType name, for KMS's error messages."""


def _double(default: float, low: float, high: float) -> Prop:
    return Prop("double", default, low, high)


_CROP = Prop("int", 0, 0, INT_MAX)
ELEMENTS: dict[str, tuple[str, dict[str, Prop]]] = {
    "videoflip": ("video", {
        "method": Prop("enum", 0, nicks=FLIP_METHODS, gtype="GstVideoFlipMethod"),
        "video-direction": Prop("enum", 0, nicks=ORIENTATIONS, gtype="GstVideoOrientationMethod"),
    }),
    "videobalance": ("video", {
        "contrast": _double(1.0, 0.0, 2.0), "brightness": _double(0.0, -1.0, 1.0),
        "hue": _double(0.0, -1.0, 1.0), "saturation": _double(1.0, 0.0, 2.0),
    }),
    "videocrop": ("video", {"top": _CROP, "bottom": _CROP, "left": _CROP, "right": _CROP}),
    "videorate": ("video", {
        "max-rate": Prop("int", INT_MAX, 1, INT_MAX), "drop-only": Prop("bool", False),
    }),
    "videoscale": ("video", {
        "method": Prop("enum", 1, nicks=SCALE_METHODS, gtype="GstVideoScaleMethod"),
        "add-borders": Prop("bool", True),
    }),
    "capsfilter": ("video", {"caps": Prop("caps", "video/x-raw")}),
    "volume": ("audio", {"volume": _double(1.0, 0.0, 10.0), "mute": Prop("bool", False)}),
}  # fmt: skip
"""The supported elements: their kind and properties."""

SUPPORTED = ", ".join(sorted(ELEMENTS))
_CAPS_FIELDS = ("width", "height", "framerate")
_counters: dict[str, itertools.count[int]] = {}
_counters_lock = threading.Lock()


def _instance_name(factory: str) -> str:
    """GStreamer's default element name: the factory and a per-factory counter."""
    with _counters_lock:
        counter = _counters.setdefault(factory, itertools.count())
        return f"{factory}{next(counter)}"


@dataclass
class Element:
    """One parsed element: its factory, instance name and property values."""

    factory: str
    name: str
    kind: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def props(self) -> dict[str, Prop]:
        return ELEMENTS[self.factory][1]

    def value(self, prop: str) -> Any:
        return self.values.get(prop, self.props[prop].default)

    def set_from_api(self, prop: str, text: str) -> None:
        """``setElementProperty``: KMS's conversions and errors."""
        spec = self.props.get(prop)
        if spec is None:
            raise CommandError(f"No property named '{prop}' in object '{self.name}'")
        if spec.type in ("bool", "caps"):
            gtype = "GParamBoolean" if spec.type == "bool" else "GParamBoxed"
            raise CommandError(f"Property type not implemented: {gtype}", not_implemented=True)
        try:
            value = _convert(spec, text)
        except ValueError as exc:
            kind = "enum" if spec.type == "enum" else spec.type
            raise CommandError(f"Cannot convert '{text}' to {kind}: {exc}") from None
        self._store(prop, value)

    def _store(self, prop: str, value: Any) -> None:
        if self.factory == "videoflip" and prop in ("method", "video-direction"):
            # One property under two names (``method`` is the deprecated one).
            self.values["method"] = self.values["video-direction"] = value
        else:
            self.values[prop] = value


def parse(command: str) -> Element:
    """The element of a ``gst-launch`` command, or :class:`CommandError` (KMS's message)."""
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"GStreamer element cannot be created: syntax error ({exc})") from None
    if not tokens:
        raise CommandError("GStreamer element cannot be created: empty pipeline not allowed")
    if "!" in tokens or sum("=" not in t for t in tokens) > 1:
        raise CommandError("Given command is not valid, only one element can be created")
    factory, *assignments = tokens
    if factory not in ELEMENTS:
        raise CommandError(
            f'GStreamer element cannot be created: no element "{factory}" (this media server '
            f"runs these GStreamer elements: {SUPPORTED})"
        )
    element = Element(factory, _instance_name(factory), ELEMENTS[factory][0])
    for assignment in assignments:
        prop, _, text = assignment.partition("=")
        spec = element.props.get(prop)
        if spec is None:
            raise CommandError(
                f'GStreamer element cannot be created: no property "{prop}" in element '
                f'"{element.name}"'
            )
        try:
            value = _convert(spec, text)
        except ValueError as exc:
            raise CommandError(
                f'GStreamer element cannot be created: could not set property "{prop}" in '
                f'element "{element.name}" to "{text}" ({exc})'
            ) from None
        element._store(prop, value)
    return element


def _convert(spec: Prop, text: str) -> Any:
    text = text.strip()
    if spec.type == "int":
        value: Any = int(text, 0)
    elif spec.type == "double":
        value = float(text)
    elif spec.type == "bool":
        lowered = text.lower()
        if lowered not in ("true", "yes", "t", "1", "false", "no", "f", "0"):
            raise ValueError("not a boolean")
        return lowered in ("true", "yes", "t", "1")
    elif spec.type == "enum":
        if text in spec.nicks:
            return spec.nicks.index(text)
        if text.isdigit() and int(text) < len(spec.nicks):
            return int(text)
        raise ValueError(f"Invalid value for enum {spec.gtype}")
    else:
        return _parse_caps(text)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"out of range {spec.low:g}..{spec.high:g}")
    return value


def _parse_caps(text: str) -> dict[str, Any]:
    media, *fields = [part.strip() for part in text.split(",")]
    if media != "video/x-raw":
        raise ValueError("supported caps: video/x-raw with width, height and framerate")
    caps: dict[str, Any] = {}
    for item in fields:
        key, _, raw = item.partition("=")
        key = key.strip()
        raw = re.sub(r"^\((?:int|fraction)\)", "", raw.strip())
        if key not in _CAPS_FIELDS:
            raise ValueError(f"supported caps fields: {', '.join(_CAPS_FIELDS)}")
        if key == "framerate":
            rate = Fraction(raw)
            if rate <= 0:
                raise ValueError("framerate must be positive")
            caps[key] = rate
        else:
            size = int(raw)
            if not 2 <= size <= 8192:
                raise ValueError(f"{key} out of range 2..8192")
            caps[key] = size
    return caps


# --- processing --------------------------------------------------------------------------------

Processor = Callable[[Any], Any]
"""A decoded frame in, the frame to send out (``None``: dropped)."""


def processor(element: Element) -> Processor:
    """A fresh processor for the element's current property values (one thread uses it)."""
    factory = element.factory
    if factory == "videoflip":
        return _FilterGraph(_FLIP_FILTERS[element.value("video-direction")])
    if factory == "videobalance":
        return _balance(element)
    if factory == "videocrop":
        sides = [element.value(side) for side in ("top", "bottom", "left", "right")]
        return _Crop(*sides)
    if factory == "videorate":
        rate = element.value("max-rate")
        return _RateLimit(Fraction(rate)) if rate < INT_MAX else _same
    if factory == "capsfilter":
        caps = element.value("caps")
        if not isinstance(caps, dict):
            caps = _parse_caps(caps)
        return _Caps(caps.get("width"), caps.get("height"), caps.get("framerate"))
    if factory == "volume":
        gain = 0.0 if element.value("mute") else element.value("volume")
        return _same if gain == 1.0 else _Volume(gain)
    return _same  # videoscale


def _same(frame: Any) -> Any:
    return frame


def _stamped(out: Any, frame: Any) -> Any:
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out


class _FilterGraph:
    """A chain of FFmpeg video filters, rebuilt when the input size or format changes."""

    def __init__(self, filters: tuple[tuple[str, str], ...]):
        self.filters = filters
        self._graph: Any = None
        self._shape: tuple[int, int, str] | None = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if not self.filters:
            return frame
        shape = (frame.width, frame.height, frame.format.name)
        if shape != self._shape:
            self._graph, self._shape = self._build(frame), shape
        self._graph.push(frame)
        return _stamped(self._graph.pull(), frame)

    def _build(self, frame: av.VideoFrame) -> Any:
        graph = av.filter.Graph()
        node = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format.name,
            time_base=frame.time_base or Fraction(1, 90_000),
        )  # fmt: skip
        for name, args in self.filters:
            following = graph.add(name, args) if args else graph.add(name)
            node.link_to(following)
            node = following
        node.link_to(graph.add("buffersink"))
        graph.configure()
        return graph


class _Crop(_FilterGraph):
    def __init__(self, top: int, bottom: int, left: int, right: int):
        super().__init__(())
        self.sides = (top, bottom, left, right)

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        top, bottom, left, right = self.sides
        width = max(2, frame.width - left - right) & ~1
        height = max(2, frame.height - top - bottom) & ~1
        left, top = min(left, frame.width - width), min(top, frame.height - height)
        self.filters = (("crop", f"{width}:{height}:{left}:{top}"),)
        if (width, height) == (frame.width, frame.height):
            return frame
        return super().__call__(frame)


class _RateLimit:
    """Drop-only rate limiting: at most one frame per 1/rate of presentation time."""

    def __init__(self, rate: Fraction):
        self.rate = rate
        self._last_slot: int | None = None

    def __call__(self, frame: Any) -> Any:
        if frame.pts is None or frame.time_base is None:
            return frame
        slot = math.floor(frame.pts * frame.time_base * self.rate)
        if slot == self._last_slot:
            return None
        self._last_slot = slot  # (a slot before the last one: the source started over)
        return frame


class _Caps:
    def __init__(self, width: int | None, height: int | None, rate: Fraction | None):
        self.width, self.height = width, height
        self.limit = _RateLimit(rate) if rate else None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame | None:
        if self.limit is not None and self.limit(frame) is None:
            return None
        if self.width is None and self.height is None:
            return frame
        width = self.width or max(2, round(frame.width * self.height / frame.height) & ~1)
        height = self.height or max(2, round(frame.height * self.width / frame.width) & ~1)
        if (width, height) == (frame.width, frame.height):
            return frame
        return _stamped(frame.reformat(width=width, height=height, format="yuv420p"), frame)


def _balance(element: Element) -> Processor:
    contrast, brightness = element.value("contrast"), element.value("brightness")
    hue, saturation = element.value("hue"), element.value("saturation")
    if (contrast, brightness, hue, saturation) == (1.0, 0.0, 0.0, 1.0):
        return _same  # GStreamer's passthrough
    # gst_video_balance_update_tables: a 1-D table for Y, 2-D tables for U and V.
    levels = np.arange(256, dtype=np.float64)
    table_y = np.rint(np.clip(16 + (levels - 16) * contrast + brightness * 255, 0, 255))
    u, v = np.meshgrid(levels - 128, levels - 128, indexing="ij")
    cos, sin = math.cos(math.pi * hue), math.sin(math.pi * hue)
    table_u = np.rint(np.clip(128 + (u * cos + v * sin) * saturation, 0, 255))
    table_v = np.rint(np.clip(128 + (-u * sin + v * cos) * saturation, 0, 255))
    ty, tu, tv = (t.astype(np.uint8) for t in (table_y, table_u, table_v))

    def balance(frame: av.VideoFrame) -> av.VideoFrame:
        width, height = frame.width & ~1, frame.height & ~1
        if (width, height) != (frame.width, frame.height) or frame.format.name != "yuv420p":
            frame = _stamped(frame.reformat(width, height, "yuv420p"), frame)
        data = frame.to_ndarray()
        y_plane, u_plane, v_plane = yuv_planes(data, width, height)
        y_plane[:] = ty[y_plane]
        u_old = u_plane.copy()
        u_plane[:] = tu[u_old, v_plane]
        v_plane[:] = tv[u_old, v_plane]
        return _stamped(av.VideoFrame.from_ndarray(data, format="yuv420p"), frame)

    return balance


class _Volume:
    def __init__(self, gain: float):
        self.gain = gain

    def __call__(self, frame: av.AudioFrame) -> av.AudioFrame:
        samples = frame.to_ndarray()
        scaled = samples.astype(np.float32) * self.gain
        if np.issubdtype(samples.dtype, np.integer):
            limits = np.iinfo(samples.dtype)
            scaled = np.clip(np.rint(scaled), limits.min, limits.max)
        out = av.AudioFrame.from_ndarray(
            scaled.astype(samples.dtype), format=frame.format.name, layout=frame.layout.name
        )
        out.sample_rate = frame.sample_rate
        return _stamped(out, frame)
