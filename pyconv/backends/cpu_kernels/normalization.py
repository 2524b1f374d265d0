"""C++ kernels of the normalization family (placeholder until they land)."""

__all__ = []
