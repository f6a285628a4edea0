"""Stylefill: what an ImageNet CNN knows about the variety inside a class, as editing tools."""

__version__ = "0.1.0"
