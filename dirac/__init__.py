"""dirac: diffusion-based image inverse problems (DiracDiffusion)."""
