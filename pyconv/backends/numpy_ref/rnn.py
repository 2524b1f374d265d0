"""Placeholder: filled in by the op family's implementation."""
__all__ = []
