"""Item pictures: only real JPEG/PNG/WebP images, bounded, re-encoded without metadata."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageOps, UnidentifiedImageError

from torreya.errors import InvalidRequestError

ALLOWED = {"JPEG", "PNG", "WEBP"}
MAX_BYTES = 5_000_000
MAX_PIXELS = 40_000_000
MAX_SIDE = 800


def reencode_image(data: bytes) -> tuple[bytes, str]:
    """(JPEG bytes, content type) of an uploaded picture, EXIF and location dropped.

    Raises InvalidRequestError for anything that is not a JPEG, PNG or WebP image of sane
    size (decompression bombs included).
    """
    if not data:
        raise InvalidRequestError("Please choose a picture.", field="image")
    if len(data) > MAX_BYTES:
        raise InvalidRequestError("The picture is too large (at most 5 MB).", field="image")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ALLOWED:
                raise InvalidRequestError("Only JPEG, PNG or WebP pictures are accepted.",
                                          field="image")
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidRequestError("The picture is too large (at most 5 MB).",
                                          field="image")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=85, optimize=True)  # no exif= : none kept
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise InvalidRequestError("Only JPEG, PNG or WebP pictures are accepted.",
                                  field="image") from None
    return out.getvalue(), "image/jpeg"


async def reencoded(data: bytes) -> tuple[bytes, str]:
    """`reencode_image` beside the event loop: a phone's 12-megapixel photo takes a sixth of
    a second to decode and shrink, which on the loop every other request of the worker
    waited for (Pillow lets go of the GIL while it works)."""
    return await asyncio.to_thread(reencode_image, data)
