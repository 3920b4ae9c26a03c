"""dirac: diffusion-based image inverse problems (DiracDiffusion).

from dirac import DiracPipeline
pipe = DiracPipeline.from_pretrained("blur_default")
x = pipe(pipe.degrade(image), t_stop="do")
"""

from .pipeline import DiracPipeline, DiracPipelineOutput
from .sampling.mismatch import DegradationMismatchWarning

__all__ = ["DegradationMismatchWarning", "DiracPipeline", "DiracPipelineOutput"]
