"""rsd-mini: ResShift and RSD (arXiv 2503.13358), small enough to read, faithful enough to reproduce."""

__version__ = "0.1.0"
