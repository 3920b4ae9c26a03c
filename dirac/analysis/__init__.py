"""Analysis: early-stopping sweeps, timing, figures."""
