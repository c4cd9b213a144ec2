"""The picture size of an encoded video key frame, read from its bitstream (no decoding).

A recorder that writes packets as they come must declare its video track (width and height)
before the first packet: the size is in the VP8 key frame header (RFC 6386 9.1) or in the
H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1), which an Annex B key frame carries.
"""

from __future__ import annotations

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
"""H.264 profiles whose SPS carries chroma format, bit depths and scaling matrices."""


def video_size(codec: str, data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a VP8 or H.264 (Annex B) key frame; ``None`` if not found."""
    try:
        if codec == "vp8":
            return _vp8_size(data)
        if codec == "h264":
            sps = next((nal for nal in annexb_nal_units(data) if nal[0] & 0x1F == 7), None)
            return _sps_size(sps) if sps is not None else None
    except (IndexError, ValueError):
        return None  # a truncated or corrupt header
    return None


def annexb_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without their start codes."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    units = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        unit = data[start:end].rstrip(b"\x00")  # a 4-byte start code leaves a trailing zero
        if unit:
            units.append(unit)
    return units


def _vp8_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None  # not a key frame
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


class _Bits:
    """An MSB-first bit reader over an RBSP (emulation prevention bytes removed)."""

    def __init__(self, nal: bytes):
        self.data = nal.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _sps_size(nal: bytes) -> tuple[int, int] | None:
    bits = _Bits(nal[1:])  # after the NAL header byte
    profile_idc = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            bits.u(1)  # separate_colour_plane_flag
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if bits.u(1):  # frame_cropping_flag
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    crop_x = 2 if chroma_format_idc in (1, 2) else 1
    crop_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    return (width, height) if width > 0 and height > 0 else None


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last
