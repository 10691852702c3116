"""Where each stage reads and writes: everything lives under build/<study id>/."""

from __future__ import annotations

import os
from pathlib import Path

from glidemed.study import Study

SERVER_LOG = "server.log"  # glidemed serve's log of refusals, in the responses folder


def build_root() -> Path:
    """The folder holding all outputs; ``GLIDEMED_BUILD_DIR`` overrides ``build``."""
    return Path(os.environ.get("GLIDEMED_BUILD_DIR", "build"))


def study_build_dir(study: Study) -> Path:
    return build_root() / study.id


def images_dir(study: Study) -> Path:
    return study_build_dir(study) / "images"


def survey_dir(study: Study) -> Path:
    return study_build_dir(study) / "survey"


def key_dir(study: Study) -> Path:
    return study_build_dir(study) / "key"


def analysis_dir(study: Study) -> Path:
    return study_build_dir(study) / "analysis"


def sheets_dir(study: Study) -> Path:
    """Contact sheets and figures for the investigator; never part of the survey."""
    return study_build_dir(study) / "sheets"


def responses_dir(study: Study) -> Path:
    """Where returned response files are collected by default."""
    return study_build_dir(study) / "responses"


def received_dir(study: Study) -> Path:
    """Where `glidemed serve` stores every accepted response, one folder per rater."""
    return responses_dir(study) / "received"


def server_dir(study: Study) -> Path:
    """Secrets of `glidemed serve` (invitation tokens, admin token); never served."""
    return study_build_dir(study) / "server"


def scores_dir(study: Study) -> Path:
    """Automated scores of the images (glidemed score), read by glidemed analyze."""
    return study_build_dir(study) / "scores"
