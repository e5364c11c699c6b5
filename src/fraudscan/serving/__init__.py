"""The scoring service and inspector workbench (BentoML; see docs/service.md).

>>> from fraudscan.serving import create_app      # the Starlette app BentoML mounts
>>> app = create_app("W")                          # doctest: +SKIP

``serving/service.py`` at the repository root is the BentoML entry (``bentoml build`` there);
``fraudscan serve W`` starts it on 127.0.0.1.
"""

from __future__ import annotations

from fraudscan.serving.access import ROLES, AccessFile, AuditLog, verify_audit
from fraudscan.serving.app import Service, create_app

__all__ = ["ROLES", "AccessFile", "AuditLog", "Service", "create_app", "verify_audit"]
