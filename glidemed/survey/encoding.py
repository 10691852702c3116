"""Encodings of real and generated images: a difference would tell raters which is which."""

from __future__ import annotations


def encoding_signature(data: bytes) -> tuple:
    """What an encoder leaves in a file besides the pixels: format, and for JPEG the frame
    type, component sampling and quantisation tables; for PNG bit depth, colour type and
    interlacing; for WebP the chunk kind (lossy, lossless, extended) and its flags."""
    if data[:2] == b"\xff\xd8":
        frame, tables, i = None, [], 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2:i + 4], "big")
            body = data[i + 4:i + 2 + length]
            if marker == 0xDB:
                tables.append(body)
            elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                n = body[5] if len(body) > 5 else 0
                frame = (marker, body[0], tuple(body[6 + 3 * k + 1] for k in range(n)))
            elif marker == 0xDA:
                break
            i += 2 + length
        return ("jpeg", frame, tuple(tables))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ("png", data[24:25], data[25:26], data[28:29])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        return ("webp", kind, data[20:21] if kind == b"VP8X" else b"")
    return ("unknown",)


def encoding_problems(key, images: dict[str, bytes]) -> list[str]:
    """Real (control) images encoded differently from generated ones, a give-away in the file.

    ``key``: the build's SurveyKey (or its dict); ``images``: image token -> the bytes the
    page shows.
    """
    from glidemed.survey.key import SurveyKey

    groups: dict[bool, dict[tuple, int]] = {True: {}, False: {}}
    for panel in SurveyKey.of(key).panels.values():
        for token in panel.images:
            if token in images:
                signature = encoding_signature(images[token])
                kind = groups[panel.control]
                kind[signature] = kind.get(signature, 0) + 1
    if not groups[True] or not groups[False] or set(groups[True]) == set(groups[False]):
        return []
    only_real = sum(n for s, n in groups[True].items() if s not in groups[False])
    only_generated = sum(n for s, n in groups[False].items() if s not in groups[True])
    return [f"real (control) images are encoded differently from generated ones: {only_real} real "
            f"and {only_generated} generated image(s) have an encoding (format, frame, sampling, "
            f"quantisation) the other kind lacks"]

