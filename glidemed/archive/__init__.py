"""Archive a whole study as one zip (an RO-Crate) for deposit with a paper, and verify it.

:mod:`~glidemed.archive.pack` writes the archive, :mod:`~glidemed.archive.crate` its
RO-Crate metadata, :mod:`~glidemed.archive.citation` its CITATION.cff and .zenodo.json,
:mod:`~glidemed.archive.verify` checks one.
"""

from glidemed.archive.pack import SUMS, archive_path, archive_study, sealed_key_path
from glidemed.archive.verify import VerifyReport, verify_archive

__all__ = ["SUMS", "VerifyReport", "archive_path", "archive_study", "sealed_key_path",
           "verify_archive"]
