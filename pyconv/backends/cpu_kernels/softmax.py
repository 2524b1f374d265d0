"""C++ kernels of the softmax family (placeholder until they land)."""

__all__ = []
