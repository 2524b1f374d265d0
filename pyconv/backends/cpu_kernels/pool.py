"""C++ kernels of the pool family (placeholder until they land)."""

__all__ = []
