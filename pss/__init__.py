"""pss-explorer: train, inspect and export resource-adaptive supernets (PSS-Net)."""

__version__ = "0.1.0"


def load_subnet(directory):
    """Rebuild an exported subnet (state dict + card) as a dense ``torch.nn.Module``."""
    from .export import load_subnet as _load

    return _load(directory)


__all__ = ["__version__", "load_subnet"]
