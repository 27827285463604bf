"""azdsl: AutoML-Zero algorithms as a small language, run fast and searched by evolution."""

__version__ = "0.1.0"
