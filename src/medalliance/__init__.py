"""MedAlliance: the integrated information platform of a medical consortium."""

__version__ = "0.1.0"
