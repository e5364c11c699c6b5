"""BentoML entry point: ``bentoml serve service:FraudScan`` / ``bentoml build`` from this folder.

The service code lives in the fraudscan package (:mod:`fraudscan.serving.bento`); this file only
names it, so the Bento and ``fraudscan serve`` run the same code.
"""

from fraudscan.serving.bento import FraudScan

__all__ = ["FraudScan"]
