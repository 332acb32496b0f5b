"""fftui's engine: a Forward-Forward ReLU layer, the report's sparsity theory per batch, and the
training thread. Pure Python and PyTorch; no user-interface code."""
from .config import Config, ConfigError

__all__ = ["Config", "ConfigError"]
