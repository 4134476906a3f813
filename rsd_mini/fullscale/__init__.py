"""Full-scale machinery: what reproducing the paper's tables on a GPU needs beyond the method.

The method itself is in the top-level modules a reader meets first: :mod:`rsd_mini.diffusion`
(ResShift, RSD Eq. 2–5), :mod:`rsd_mini.unet` (the Swin-UNet), :mod:`rsd_mini.distill` (the RSD
objective, Eq. 9–13) and :mod:`rsd_mini.toy` (the 2-D problem with a known answer). This package
holds the plumbing around them at the paper's scale:

================  =================================================================
autoencoder       the official VQ-f4 autoencoder (``VQModelTorch`` layout)
latent            ``LatentSR``: teacher / RSD / SinSR sampling in VQ-f4 latents
official          strict loading of the official ResShift / SinSR / RSD / VQ-f4 files
weights           registry, resumable checksummed downloads
weights_command   ``python -m rsd_mini weights list | download | verify``
prepare           manifests, checks and preparation of the paper's data sets
tables            the paper's tables as data; ``reproduce --table N``
distributed       data-parallel training under ``torchrun``
================  =================================================================

Nothing here is imported by the method modules, so the dependency points one way: the
machinery uses the method, never the reverse.
"""
