"""The Kurento object model (docs/reference/kurento-protocol.md section 8,
the kmd.json IDL), declared once.

Declarative and free of behaviour: which remote classes exist, their ancestors, constructor
params, properties (``get<Name>``/``set<Name>`` invokes), methods and events, plus the enums and
complex types their params use. Both sides of the protocol read it: the media server
(:mod:`flowengine.media.marshal` checks incoming values against these declarations,
:mod:`flowengine.media.dispatch` resolves invokes and subscriptions with them) and the client
(:mod:`flowengine.kurento.proxies` derives its parameter names, type tags, object results and
name spellings from them).

Only what the embedded server can create is listed as a factory (:data:`FACTORIES`). Abstract
ancestors are here so ``describe`` gives Kurento's hierarchy and inherited members resolve.
Classes the embedded server does not implement (``AlphaBlending``, ``Mixer``,
``ImageOverlayFilter``, ``ZBarFilter``, ``OpenCVFilter``, ``RtpEndpoint``, ``HttpPostEndpoint``...)
are *not* declared: creating them answers 40108 ``Factory 'X' not found``, as a KMS without that
module does. The client still reaches their operations on a real KMS, by keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED: Any = object()
"""Marker: a param without default (mandatory unless ``optional``)."""


@dataclass(frozen=True)
class Param:
    """A constructor or method parameter, an event field or a complex-type field.

    ``type`` is a kmd type name: ``String``, ``int``, ``int64``, ``float``, ``double``,
    ``boolean``, an enum, a complex type, a remote class (passed as an object id), ``X[]`` for
    arrays or ``String<>`` for maps.
    """

    name: str
    type: str
    optional: bool = False
    default: Any = None


@dataclass(frozen=True)
class Property:
    """A property: ``readonly`` and ``final`` ones have no setter."""

    name: str
    type: str
    readonly: bool = False
    final: bool = False

    @property
    def settable(self) -> bool:
        return not (self.readonly or self.final)

    @property
    def getter(self) -> str:
        """The getter's operation: only the first letter is capitalised (``getMediaState``,
        ``getICECandidatePairs``, ``getIceConnectionState``)."""
        return "get" + self.name[:1].upper() + self.name[1:]

    @property
    def setter(self) -> str:
        """The setter's operation (``setStunServerAddress``); it exists when :attr:`settable`."""
        return "set" + self.getter[3:]


@dataclass(frozen=True)
class Method:
    name: str
    params: tuple[Param, ...] = ()
    returns: str | None = None


@dataclass(frozen=True)
class EventSpec:
    name: str
    fields: tuple[Param, ...] = ()


@dataclass(frozen=True)
class RemoteClass:
    name: str
    extends: str | None = None
    abstract: bool = False
    constructor: tuple[Param, ...] = ()
    properties: tuple[Property, ...] = ()
    methods: tuple[Method, ...] = ()
    events: tuple[EventSpec, ...] = ()
    module: str = "kurento"

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ComplexType:
    name: str
    fields: tuple[Param, ...] = ()
    extends: str | None = None
    module: str = "kurento"


def _p(name: str, type_: str, default: Any = REQUIRED) -> Param:
    """Shorthand: a param is optional exactly when it has a default."""
    if default is REQUIRED:
        return Param(name, type_)
    return Param(name, type_, optional=True, default=default)


_MEDIA_TYPE_OPT = _p("mediaType", "MediaType", None)

# --- enums ----------------------------------------------------------------------------------------

ENUMS: dict[str, tuple[str, ...]] = {
    "MediaType": ("AUDIO", "DATA", "VIDEO"),
    "MediaProfileSpecType": (
        "WEBM", "MKV", "MP4", "WEBM_VIDEO_ONLY", "WEBM_AUDIO_ONLY", "MKV_VIDEO_ONLY",
        "MKV_AUDIO_ONLY", "MP4_VIDEO_ONLY", "MP4_AUDIO_ONLY", "JPEG_VIDEO_ONLY",
        "KURENTO_SPLIT_RECORDER", "FLV",
    ),
    "MediaState": ("DISCONNECTED", "CONNECTED"),
    "ConnectionState": ("DISCONNECTED", "CONNECTED"),
    "MediaFlowState": ("FLOWING", "NOT_FLOWING"),
    "MediaTranscodingState": ("TRANSCODING", "NOT_TRANSCODING"),
    "UriEndpointState": ("STOP", "START", "PAUSE"),
    "IceComponentState": (
        "DISCONNECTED", "GATHERING", "CONNECTING", "CONNECTED", "READY", "FAILED",
    ),
    "DtlsConnectionState": ("NEW", "CLOSED", "FAILED", "CONNECTING", "CONNECTED"),
    "CertificateKeyType": ("RSA", "ECDSA"),
    "ServerType": ("KMS", "KCS"),
    "GstreamerDotDetails": (
        "SHOW_MEDIA_TYPE", "SHOW_CAPS_DETAILS", "SHOW_NON_DEFAULT_PARAMS", "SHOW_STATES",
        "SHOW_FULL_PARAMS", "SHOW_ALL", "SHOW_VERBOSE",
    ),
    "StatsType": (
        "inboundrtp", "outboundrtp", "session", "datachannel", "track", "transport",
        "candidatepair", "localcandidate", "remotecandidate", "element", "endpoint",
    ),
    "AudioCodec": ("OPUS", "PCMU", "RAW"),
    "VideoCodec": ("VP8", "H264", "RAW"),
    "FilterType": ("AUDIO", "AUTODETECT", "VIDEO"),
    "DSCPValue": (
        "NO_DSCP", "NO_VALUE", "AUDIO_VERYLOW", "AUDIO_LOW", "AUDIO_MEDIUM", "AUDIO_HIGH",
        "VIDEO_VERYLOW", "VIDEO_LOW", "VIDEO_MEDIUM", "VIDEO_HIGH", "DATA_VERYLOW",
        "DATA_LOW", "DATA_MEDIUM", "DATA_HIGH", "CHROME_HIGH", "CHROME_MEDIUM", "CHROME_LOW",
        "CHROME_VERYLOW", "CS0", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7", "AF11",
        "AF12", "AF13", "AF21", "AF22", "AF23", "AF31", "AF32", "AF33", "AF41", "AF42", "AF43",
        "EF", "VOICEADMIT", "LE",
    ),
}  # fmt: skip

# --- complex types --------------------------------------------------------------------------------

COMPLEX_TYPES: dict[str, ComplexType] = {
    t.name: t
    for t in (
        ComplexType("IceCandidate", (
            _p("candidate", "String"), _p("sdpMid", "String"), _p("sdpMLineIndex", "int"),
        )),
        ComplexType("OfferOptions", (
            _p("offerToReceiveAudio", "boolean", True),
            _p("offerToReceiveVideo", "boolean", True),
        )),
        ComplexType("Tag", (_p("key", "String"), _p("value", "String"))),
        ComplexType("Fraction", (_p("numerator", "int"), _p("denominator", "int"))),
        ComplexType("AudioCaps", (_p("codec", "AudioCodec"), _p("bitrate", "int"))),
        ComplexType("VideoCaps", (_p("codec", "VideoCodec"), _p("framerate", "Fraction"))),
        ComplexType("RembParams", (
            _p("packetsRecvIntervalTop", "int", None), _p("exponentialFactor", "float", None),
            _p("linealFactorMin", "int", None), _p("linealFactorGrade", "float", None),
            _p("decrementFactor", "float", None), _p("thresholdFactor", "float", None),
            _p("upLosses", "int", None), _p("rembOnConnect", "int", None),
        )),
    )
}  # fmt: skip

# --- remote classes -------------------------------------------------------------------------------

_CLASSES = (
    RemoteClass(
        "MediaObject",
        abstract=True,
        properties=(
            Property("mediaPipeline", "MediaPipeline", final=True),
            Property("parent", "MediaObject", final=True),
            Property("id", "String", final=True),
            Property("children", "MediaObject[]", readonly=True),
            Property("name", "String"),
            Property("sendTagsInEvents", "boolean"),
            Property("creationTime", "int", final=True),
        ),
        methods=(
            Method("addTag", (_p("key", "String"), _p("value", "String"))),
            Method("removeTag", (_p("key", "String"),)),
            Method("getTag", (_p("key", "String"),), "String"),
            Method("getTags", (), "Tag[]"),
        ),
        events=(
            EventSpec("Error", (
                _p("description", "String"), _p("errorCode", "int"), _p("type", "String"),
            )),
        ),
    ),
    RemoteClass(
        "ServerManager",
        extends="MediaObject",
        abstract=True,
        properties=(
            Property("info", "ServerInfo", readonly=True),
            Property("pipelines", "MediaPipeline[]", readonly=True),
            Property("sessions", "String[]", readonly=True),
            Property("metadata", "String", readonly=True),
        ),
        methods=(
            Method("getKmd", (_p("moduleName", "String"),), "String"),
            Method("getCpuCount", (), "int"),
            Method("getUsedCpu", (_p("interval", "int"),), "float"),
            Method("getUsedMemory", (), "int64"),
        ),
        events=(
            EventSpec("ObjectCreated", (_p("object", "MediaObject"),)),
            EventSpec("ObjectDestroyed", (_p("objectId", "String"),)),
        ),
    ),
    RemoteClass(
        "MediaPipeline",
        extends="MediaObject",
        properties=(Property("latencyStats", "boolean"),),
        methods=(
            Method("getGstreamerDot", (_p("details", "GstreamerDotDetails", None),), "String"),
            Method("dumpGstreamerDot", (_p("details", "GstreamerDotDetails", None),)),
        ),
    ),
    RemoteClass(
        "MediaElement",
        extends="MediaObject",
        abstract=True,
        properties=(
            Property("encoderBitrate", "int"),
            Property("minEncoderBitrate", "int"),
            Property("maxEncoderBitrate", "int"),
        ),
        methods=(
            Method("connect", (
                _p("sink", "MediaElement"), _MEDIA_TYPE_OPT,
                _p("sourceMediaDescription", "String", None),
                _p("sinkMediaDescription", "String", None),
            )),
            Method("disconnect", (
                _p("sink", "MediaElement"), _MEDIA_TYPE_OPT,
                _p("sourceMediaDescription", "String", None),
                _p("sinkMediaDescription", "String", None),
            )),
            Method("getSourceConnections", (
                _MEDIA_TYPE_OPT, _p("description", "String", None),
            ), "ElementConnectionData[]"),
            Method("getSinkConnections", (
                _MEDIA_TYPE_OPT, _p("description", "String", None),
            ), "ElementConnectionData[]"),
            Method("setAudioFormat", (_p("caps", "AudioCaps"),)),
            Method("setVideoFormat", (_p("caps", "VideoCaps"),)),
            Method("getStats", (_MEDIA_TYPE_OPT,), "Stats<>"),
            Method("isMediaFlowingIn", (
                _p("mediaType", "MediaType"), _p("sinkMediaDescription", "String", "default"),
            ), "boolean"),
            Method("isMediaFlowingOut", (
                _p("mediaType", "MediaType"), _p("sourceMediaDescription", "String", "default"),
            ), "boolean"),
            Method("isMediaTranscoding", (
                _p("mediaType", "MediaType"), _p("binName", "String", "default"),
            ), "boolean"),
            Method("getGstreamerDot", (_p("details", "GstreamerDotDetails", None),), "String"),
            Method("dumpGstreamerDot", (_p("details", "GstreamerDotDetails", None),)),
        ),
        events=(
            EventSpec("ElementConnected", (
                _p("sink", "MediaElement"), _p("mediaType", "MediaType"),
                _p("sourceMediaDescription", "String"), _p("sinkMediaDescription", "String"),
            )),
            EventSpec("ElementDisconnected", (
                _p("sink", "MediaElement"), _p("mediaType", "MediaType"),
                _p("sourceMediaDescription", "String"), _p("sinkMediaDescription", "String"),
            )),
            EventSpec("MediaFlowOutStateChanged", (
                _p("state", "MediaFlowState"), _p("padName", "String"),
                _p("mediaType", "MediaType"),
            )),
            EventSpec("MediaFlowInStateChanged", (
                _p("state", "MediaFlowState"), _p("padName", "String"),
                _p("mediaType", "MediaType"),
            )),
            EventSpec("MediaTranscodingStateChanged", (
                _p("state", "MediaTranscodingState"), _p("binName", "String"),
                _p("mediaType", "MediaType"),
            )),
        ),
    ),
    RemoteClass("Endpoint", extends="MediaElement", abstract=True),
    RemoteClass(
        "SessionEndpoint",
        extends="Endpoint",
        abstract=True,
        events=(EventSpec("MediaSessionStarted"), EventSpec("MediaSessionTerminated")),
    ),
    RemoteClass(
        "SdpEndpoint",
        extends="SessionEndpoint",
        abstract=True,
        properties=(
            Property("maxAudioRecvBandwidth", "int"),
            Property("maxVideoRecvBandwidth", "int"),
        ),
        methods=(
            Method("generateOffer", (_p("options", "OfferOptions", None),), "String"),
            Method("processOffer", (_p("offer", "String"),), "String"),
            Method("processAnswer", (_p("answer", "String"),), "String"),
            Method("getLocalSessionDescriptor", (), "String"),
            Method("getRemoteSessionDescriptor", (), "String"),
        ),
    ),
    RemoteClass(
        "BaseRtpEndpoint",
        extends="SdpEndpoint",
        abstract=True,
        properties=(
            Property("minVideoRecvBandwidth", "int"),
            Property("minVideoSendBandwidth", "int"),
            Property("maxVideoSendBandwidth", "int"),
            Property("mediaState", "MediaState", readonly=True),
            Property("connectionState", "ConnectionState", readonly=True),
            Property("mtu", "int"),
            Property("rembParams", "RembParams"),
        ),
        methods=(Method("requestKeyframe"),),
        events=(
            EventSpec("MediaStateChanged", (
                _p("oldState", "MediaState"), _p("newState", "MediaState"),
            )),
            EventSpec("ConnectionStateChanged", (
                _p("oldState", "ConnectionState"), _p("newState", "ConnectionState"),
            )),
        ),
    ),
    RemoteClass(
        "WebRtcEndpoint",
        extends="BaseRtpEndpoint",
        constructor=(
            _p("mediaPipeline", "MediaPipeline"),
            _p("recvonly", "boolean", False),
            _p("sendonly", "boolean", False),
            _p("useDataChannels", "boolean", False),
            _p("certificateKeyType", "CertificateKeyType", "RSA"),
            _p("qosDscp", "DSCPValue", "NO_VALUE"),
        ),
        properties=(
            Property("stunServerAddress", "String"),
            Property("stunServerPort", "int"),
            Property("turnUrl", "String"),
            Property("networkInterfaces", "String"),
            Property("iceTcp", "boolean"),
            Property("externalIPv4", "String"),
            Property("externalIPv6", "String"),
            Property("ICECandidatePairs", "IceCandidatePair[]", readonly=True),
            Property("IceConnectionState", "IceConnection[]", readonly=True),
            Property("DtlsConnectionState", "DtlsConnection[]", readonly=True),
        ),
        methods=(
            Method("gatherCandidates"),
            Method("addIceCandidate", (_p("candidate", "IceCandidate"),)),
            Method("createDataChannel", (
                _p("label", "String", ""), _p("ordered", "boolean", True),
                _p("maxPacketLifeTime", "int", -1), _p("maxRetransmits", "int", -1),
                _p("protocol", "String", ""),
            )),
            Method("closeDataChannel", (_p("channelId", "int"),)),
        ),
        events=(
            EventSpec("IceCandidateFound", (_p("candidate", "IceCandidate"),)),
            EventSpec("IceGatheringDone"),
            EventSpec("IceComponentStateChanged", (
                _p("streamId", "int"), _p("componentId", "int"),
                _p("state", "IceComponentState"),
            )),
            EventSpec("NewCandidatePairSelected", (_p("candidatePair", "IceCandidatePair"),)),
            EventSpec("DtlsConnectionStateChange", (
                _p("streamId", "String"), _p("componentId", "String"),
                _p("connectionId", "String"), _p("state", "DtlsConnectionState"),
            )),
            EventSpec("DataChannelOpened", (_p("channelId", "int"),)),
            EventSpec("DataChannelClosed", (_p("channelId", "int"),)),
        ),
    ),
    RemoteClass(
        "UriEndpoint",
        extends="Endpoint",
        abstract=True,
        properties=(
            Property("uri", "String", final=True),
            Property("state", "UriEndpointState", readonly=True),
        ),
        methods=(Method("pause"), Method("stop")),
        events=(EventSpec("UriEndpointStateChanged", (_p("state", "UriEndpointState"),)),),
    ),
    RemoteClass(
        "PlayerEndpoint",
        extends="UriEndpoint",
        constructor=(
            _p("mediaPipeline", "MediaPipeline"),
            _p("uri", "String"),
            _p("useEncodedMedia", "boolean", False),
            _p("networkCache", "int", 2000),
        ),
        properties=(
            Property("videoInfo", "VideoInfo", readonly=True),
            Property("elementGstreamerDot", "String", readonly=True),
            Property("position", "int64"),
        ),
        methods=(Method("play"),),
        events=(EventSpec("EndOfStream"),),
    ),
    RemoteClass(
        "Hub",
        extends="MediaObject",
        abstract=True,
        methods=(
            Method("getGstreamerDot", (_p("details", "GstreamerDotDetails", None),), "String"),
            Method("dumpGstreamerDot", (_p("details", "GstreamerDotDetails", None),)),
        ),
    ),
    RemoteClass("HubPort", extends="MediaElement", constructor=(_p("hub", "Hub"),)),
    RemoteClass(
        "Composite",
        extends="Hub",
        constructor=(
            _p("mediaPipeline", "MediaPipeline"),
            _p("width", "int", 800),
            _p("height", "int", 600),
            _p("framerate", "int", 15),
        ),
    ),
    RemoteClass(
        "Dispatcher",
        extends="Hub",
        constructor=(_p("mediaPipeline", "MediaPipeline"),),
        methods=(Method("connect", (_p("source", "HubPort"), _p("sink", "HubPort"))),),
    ),
    RemoteClass(
        "DispatcherOneToMany",
        extends="Hub",
        constructor=(_p("mediaPipeline", "MediaPipeline"),),
        methods=(Method("setSource", (_p("source", "HubPort"),)), Method("removeSource")),
    ),
    RemoteClass("Filter", extends="MediaElement", abstract=True),
    RemoteClass(
        "FaceOverlayFilter",
        extends="Filter",
        constructor=(_p("mediaPipeline", "MediaPipeline"),),
        methods=(
            Method("unsetOverlayedImage"),
            Method("setOverlayedImage", (
                _p("uri", "String"), _p("offsetXPercent", "float"),
                _p("offsetYPercent", "float"), _p("widthPercent", "float"),
                _p("heightPercent", "float"),
            )),
        ),
    ),
    RemoteClass(
        "GStreamerFilter",
        extends="Filter",
        constructor=(
            _p("mediaPipeline", "MediaPipeline"),
            _p("command", "String"),
            _p("filterType", "FilterType", "AUTODETECT"),
        ),
        properties=(Property("command", "String", readonly=True),),
        methods=(
            Method("setElementProperty", (
                _p("propertyName", "String"), _p("propertyValue", "String"),
            )),
        ),
    ),
    RemoteClass(
        "RecorderEndpoint",
        extends="UriEndpoint",
        constructor=(
            _p("mediaPipeline", "MediaPipeline"),
            _p("uri", "String"),
            _p("mediaProfile", "MediaProfileSpecType", "WEBM"),
            _p("stopOnEndOfStream", "boolean", False),
        ),
        methods=(Method("record"), Method("stopAndWait")),
        events=(EventSpec("Recording"), EventSpec("Paused"), EventSpec("Stopped")),
    ),
)  # fmt: skip

CLASSES: dict[str, RemoteClass] = {c.name: c for c in _CLASSES}
"""Every declared class by bare name."""

FACTORIES: dict[str, tuple[str, ...]] = {
    "core": ("HubPort", "MediaPipeline"),
    "elements": (
        "Composite", "Dispatcher", "DispatcherOneToMany", "PlayerEndpoint", "RecorderEndpoint",
        "WebRtcEndpoint",
    ),
    "filters": ("FaceOverlayFilter", "GStreamerFilter"),
}
"""What ``create`` accepts, per module, as ``getInfo`` reports it."""

SERVER_MANAGER_ID = "manager_ServerManager"
"""The id of the ServerManager singleton (section 4.3)."""

MODULE_VERSION = "7.3.0"
"""The Kurento version the model follows (reported by ``getInfo``)."""


def resolve_factory(type_name: str) -> RemoteClass | None:
    """The creatable class for ``create``'s ``type`` (bare or ``kurento.``-qualified)."""
    name = type_name.removeprefix("kurento.")
    if any(name in names for names in FACTORIES.values()):
        return CLASSES[name]
    return None


def ancestors(cls: RemoteClass) -> list[RemoteClass]:
    """The ancestors, nearest first, without the class itself."""
    out = []
    parent = cls.extends
    while parent is not None:
        pcls = CLASSES[parent]
        out.append(pcls)
        parent = pcls.extends
    return out


def lineage(cls: RemoteClass) -> list[RemoteClass]:
    """The class and its ancestors, the class first."""
    return [cls, *ancestors(cls)]


def is_subclass(cls: RemoteClass, base: str) -> bool:
    return any(c.name == base for c in lineage(cls))


def find_method(cls: RemoteClass, name: str) -> Method | None:
    """The nearest declaration of method ``name`` (a subclass may redeclare getGstreamerDot)."""
    for c in lineage(cls):
        for m in c.methods:
            if m.name == name:
                return m
    return None


def find_accessor(cls: RemoteClass, operation: str) -> tuple[Property, str] | None:
    """``(property, "get"|"set")`` when ``operation`` is a property accessor of ``cls``
    (:attr:`Property.getter`, :attr:`Property.setter`); read-only and final properties have no
    setter."""
    for c in lineage(cls):
        for prop in c.properties:
            if operation == prop.getter:
                return prop, "get"
            if operation == prop.setter:
                return (prop, "set") if prop.settable else None
    return None


def find_event(cls: RemoteClass, name: str) -> EventSpec | None:
    for c in lineage(cls):
        for e in c.events:
            if e.name == name:
                return e
    return None


@dataclass
class ClassInfo:
    """What ``describe`` returns for an object of this class."""

    type: str
    qualified_type: str
    hierarchy: list[str] = field(default_factory=list)

    def to_result(self) -> dict[str, Any]:
        return {
            "hierarchy": self.hierarchy,
            "qualifiedType": self.qualified_type,
            "type": self.type,
        }


def describe(cls: RemoteClass) -> ClassInfo:
    return ClassInfo(cls.name, cls.qualified_name, [a.qualified_name for a in ancestors(cls)])
