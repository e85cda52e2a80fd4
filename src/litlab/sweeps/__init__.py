"""Sweeps: the report, its plots, the Optuna study, trial pruning, the end of a multirun."""
