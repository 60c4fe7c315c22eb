"""Task sources: BIG-bench (BBH, BB-sub), user files, `datasets` hub names, and the lab."""
