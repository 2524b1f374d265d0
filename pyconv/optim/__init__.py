"""Optimizers (placeholder until the optim family lands)."""
