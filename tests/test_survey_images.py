"""Survey images: metadata never survives re-encoding; one size for all."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from glidemed.errors import SurveyError
from glidemed.survey.audit import image_problems
from glidemed.survey.images import Encoding, common_size, encode_all, encode_image


@pytest.fixture
def tagged_png(tmp_path):
    """A PNG carrying a text chunk, EXIF and an ICC profile, as generators may write."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "condition=beta seed=123456789")
    exif = Image.Exif()
    exif[0x010E] = "beta"
    path = tmp_path / "tagged.png"
    Image.new("RGB", (40, 30), (10, 120, 200)).save(path, pnginfo=info, exif=exif.tobytes(),
                                                     icc_profile=b"\0" * 128)
    with Image.open(path) as check:
        assert "parameters" in check.info and "icc_profile" in check.info
    return path


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_metadata_is_stripped(tagged_png, fmt):
    data = encode_image(tagged_png, Encoding(fmt, 80, 24))
    assert image_problems(data)[0] == []
    assert b"beta" not in data and b"123456789" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt.upper() and image.size == (24, 24)
        assert not (set(image.info) & {"parameters", "exif", "icc_profile"})


def test_encoding_is_deterministic_and_parallel_safe(tagged_png):
    enc = Encoding("webp", 70, 16)
    one = encode_image(tagged_png, enc)
    assert encode_all([tagged_png] * 70, enc, workers=2) == [one] * 70


def test_common_size():
    records = [{"width": 256, "height": 256}, {"width": 512, "height": 400}]
    assert common_size(records) == 256 and common_size(records, 128) == 128


def test_unreadable_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(SurveyError, match="bad.png: unreadable image"):
        encode_image(bad, Encoding("jpeg", 80, 16))


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("size", [(37, 21), (300, 5)])
def test_audit_reads_shape_from_container(fmt, size):
    from glidemed.survey.audit import image_structure

    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format=fmt.upper())
    assert image_structure(buffer.getvalue())[2] == (fmt.upper(), *size)
    lossless = io.BytesIO()
    Image.new("RGB", size).save(lossless, format="WEBP", lossless=True)
    assert image_structure(lossless.getvalue())[2] == ("WEBP", *size)
