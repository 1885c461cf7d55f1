"""A QR code per identifier, as SVG: it encodes the identifier's resolution URL."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str, scale: int = 4) -> bytes:
    """An SVG QR code of `text` (error correction M, quiet zone included)."""
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="svg", scale=scale, xmldecl=False, title=text)
    return out.getvalue()
