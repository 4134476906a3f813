"""rsd-mini: ResShift and RSD (arXiv 2503.13358), small enough to read, faithful enough to reproduce."""

__version__ = "0.1.0"


def load(name_or_path, device="cpu"):
    """``rsd_mini.load("tiny-student")``: a ready super-resolution model (see :mod:`rsd_mini.hub`)."""
    from rsd_mini.hub import load as _load

    return _load(name_or_path, device)
