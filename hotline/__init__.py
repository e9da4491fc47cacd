"""hotline: a secure two-party messaging hotline for military deconfliction."""

__version__ = "0.1.0"
