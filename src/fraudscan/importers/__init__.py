"""Importers: canonical files, NHSA national-platform exports and the Medicare fraud set.

Each importer validates with :func:`fraudscan.validation.validate_tables` and writes with
:meth:`fraudscan.workspace.Workspace.write_tables`, so an import lands whole or not at all.
"""

from __future__ import annotations

from fraudscan.importers._common import ImportReport, read_csv_text
from fraudscan.importers.canonical import import_canonical
from fraudscan.importers.medicare import import_medicare
from fraudscan.importers.nhsa import import_nhsa

__all__ = ["ImportReport", "import_canonical", "import_medicare", "import_nhsa",
           "read_csv_text"]
