"""fftui: watch Forward-Forward training make ReLU activations sparse, beside the theory."""
__version__ = "0.1.0"  # the one version string; pyproject.toml reads it from here
