"""The 'glide' generator (work in progress: parameter checking only)."""

from __future__ import annotations

from glidemed.generate.registry import unknown_params

PARAMS = {"guidance": str, "guidance_scale": (int, float)}


class GlideGenerator:
    @staticmethod
    def check_params(params: dict) -> list[str]:
        return unknown_params(params, PARAMS)
