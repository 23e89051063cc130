"""
WebSocket frames written byte by byte (RFC 6455, 5.2), for the faults whose
frames wsproto refuses to make: a reserved opcode, RSV bits, a masked server
frame, a control frame too long or fragmented, invalid UTF-8, a close code
that must never be on the wire, half a frame.
"""

from __future__ import annotations

import struct

__all__ = ["OPCODE_BINARY", "OPCODE_CLOSE", "OPCODE_PING", "OPCODE_TEXT", "frame"]

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """
    One frame as it goes on the wire.

    :param opcode: 0 to 15 (reserved ones too).
    :param payload: the payload, unmasked.
    :param fin: the FIN bit.
    :param rsv: the three RSV bits, 0 to 7.
    :param mask: a 4-byte masking key (a server must never mask), or None.
    :param length: the length the header announces (the payload's own by
        default; more makes a truncated frame).
    """
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    bit = 0x80 if mask is not None else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload
