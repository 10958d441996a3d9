"""Input pictures for the tests: made with Pillow, some carrying the metadata we strip."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825
GPS_LATITUDE_REF = 1


def picture(fmt: str = "PNG", size: tuple[int, int] = (32, 24), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def jpeg_with_gps(colour: str = "blue") -> bytes:
    """A JPEG whose EXIF says where it was taken (and by which camera)."""
    exif = Image.Exif()
    exif[0x010F] = "ACME Camera"  # Make
    exif.get_ifd(GPS_IFD).update({GPS_LATITUDE_REF: "N", 2: (52.0, 31.0, 12.0)})
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_bomb(side: int = 7000) -> bytes:
    """A small file that declares side x side pixels (49 M at 7000): a decompression bomb."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()
