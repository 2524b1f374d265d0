"""C++ kernels of the optim family (placeholder until they land)."""

__all__ = []
