"""C++ kernels of the dropout family (placeholder until they land)."""

__all__ = []
