"""QR images (SVG for print and screens, PNG for download) with the `qrcode` library."""

from __future__ import annotations

import functools
import io

import qrcode
from qrcode.image.svg import SvgPathFillImage


def _qr(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    return code


# Drawing one takes the library about 15 ms of Python on the event loop. The same codes are
# drawn again and again: a display polls its event's rotating code every 5 s (one code per
# 30 s), a poster or certificate page is opened many times. About 20 KB each.
@functools.lru_cache(maxsize=256)
def svg(data: str) -> str:
    image = _qr(data).make_image(image_factory=SvgPathFillImage)
    return image.to_string(encoding="unicode")


def png(data: str, *, box_size: int = 12) -> bytes:
    code = _qr(data)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()
