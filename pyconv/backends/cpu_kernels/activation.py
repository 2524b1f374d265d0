"""C++ kernels of the activation family (placeholder until they land)."""

__all__ = []
