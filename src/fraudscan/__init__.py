"""fraudscan: anti-fraud toolkit for the basic medical-insurance fund."""

__version__ = "0.1.0"
