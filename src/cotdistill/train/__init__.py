"""Training: the weighted loss (loss.py), weight-carrying collators (collate.py), WeightedTrainer and multi-stage
runs (trainer.py), and the `cotdistill train` command (cli.py). Import from the submodules."""
