"""Same function as the official VQModelTorch (issue #5 acceptance check for the VQ-f4).

Needs a checkout of the official ResShift code (not part of this repository; its ``ldm``
package imports ``einops``). For each configuration the official model gets random weights,
they are loaded strictly into :class:`rsd_mini.fullscale.autoencoder.VQAutoencoder`, and the script prints
the max difference of ``encode``, of the codebook indices and quantised latents, and of
``decode`` with and without quantisation.

    python benchmarks/vq_vs_official.py --official-repo ../ResShift
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig

SMALL = dict(embed_dim=3, n_embed=16, ddconfig=dict(
    double_z=False, z_channels=3, resolution=32, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 2],
    num_res_blocks=1, attn_resolutions=[16, 8], dropout=0.0, padding_mode="zeros"))
F4 = dict(embed_dim=3, n_embed=8192, ddconfig=dict(
    double_z=False, z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4],
    num_res_blocks=2, attn_resolutions=[], dropout=0.0, padding_mode="zeros"))


def compare(official_class, params: dict, size: int, seed: int = 0) -> dict:
    """Max differences between the official model and ours on one random batch."""
    torch.manual_seed(seed)
    official = official_class(**params).eval()
    for p in official.parameters():
        p.data.normal_(0, 0.05)
    ours = VQAutoencoder(VQConfig.from_official(params)).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        z = official.encode(x)
        wide = z * 20  # spread the latents over many codebook entries
        quantized, _, info = official.quantize(wide)
        ours_quantized, index = ours.quantize(wide, return_indices=True)
        return dict(
            encode=float((ours.encode(x) - z).abs().max()),
            same_indices=bool(torch.equal(index.flatten(), info[2].flatten())),
            quantized=float((ours_quantized - quantized).abs().max()),
            decode=float((ours.decode(wide) - official.decode(wide)).abs().max()),
            decode_unquantized=float((ours.decode(wide, quantize=False)
                                      - official.decode(wide, force_not_quantize=True)).abs().max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", type=Path, required=True, help="a checkout of zsyOAOA/ResShift")
    parser.add_argument("--size", type=int, default=32, help="image side of the test batch")
    args = parser.parse_args()
    sys.path.insert(0, str(args.official_repo))
    from ldm.models.autoencoder import VQModelTorch  # official code, run only to compare

    results = {name: compare(VQModelTorch, params, args.size) for name, params in (("small", SMALL), ("f4", F4))}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
