"""C++ kernels of the rnn family (placeholder until they land)."""

__all__ = []
