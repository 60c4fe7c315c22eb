"""cotdistill: chain-of-thought distillation from a teacher's reasoning into a small student."""

__version__ = "0.1.0"
