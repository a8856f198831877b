"""A link as a QR code to project: SVG for the page, PNG for a download (``segno``, pure Python).

Black on white with the standard four-module quiet zone and error level M (segno raises it
when the code has room to spare), so a phone camera reads it off a projector screen across
a classroom.  The SVG holds only the code's squares: none of the linked text is written into it.
"""

from __future__ import annotations

import io

import segno

from teaching import bounds

BORDER = 4  # modules of white around the code, as the QR standard asks


class QRError(ValueError):
    """The text cannot be made into a readable QR code (one line)."""


def qr_code(text: str) -> segno.QRCode:
    """The QR code of ``text`` (a link); QRError when it is empty or longer than ``MAX_QR_CHARS``."""
    if not text:
        raise QRError("nothing to encode: the link is empty")
    if len(text) > bounds.MAX_QR_CHARS:
        raise QRError(f"the link has {len(text):,} characters, too many for a QR code read off a projector (at most {bounds.MAX_QR_CHARS:,})")
    return segno.make(text, error="m", micro=False)


def qr_svg(text: str, scale: int = 8) -> str:
    """An SVG document of the code, ``scale`` pixels per module (sized in pixels; it scales without blur)."""
    out = io.BytesIO()
    qr_code(text).save(out, kind="svg", scale=scale, border=BORDER, dark="#000", light="#fff", xmldecl=False)
    return out.getvalue().decode("ascii")


def qr_png(text: str, scale: int = 8) -> bytes:
    """A PNG of the code, ``scale`` pixels per module."""
    out = io.BytesIO()
    qr_code(text).save(out, kind="png", scale=scale, border=BORDER, dark="#000", light="#fff")
    return out.getvalue()
