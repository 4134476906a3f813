"""Public alias of :mod:`rsd_mini.fullscale.official` (``rsd_mini.official.load_unet`` etc.
keep working; the implementation lives with the rest of the full-scale machinery)."""

from rsd_mini.fullscale.official import load_autoencoder, load_official_model, load_unet

__all__ = ["load_autoencoder", "load_official_model", "load_unet"]
