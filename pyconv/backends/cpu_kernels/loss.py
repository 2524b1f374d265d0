"""C++ kernels of the loss family (placeholder until they land)."""

__all__ = []
