"""Helpers the test modules share; tests/conftest.py keeps only pytest's hooks and fixtures.

config: the repo's paths and the real `conf/` composed, shrunk (ROOT, CONF, SHRINK, QUICK, compose_cfg).
processes: entry points run as a user runs them, and servers started and stopped by PID.
data_files: tiny data sets written in their real formats (CSV, MNIST idx, CIFAR-10 pickles), real MNIST.
crafted: files that run code when unpickled, for the tests that a checkpoint or data file cannot.
outputs: what runs and sweeps leave behind, read back (TensorBoard events, HParams, metrics.json).
slurm_cluster: a real single-node SLURM cluster on localhost, for the tests marked `slurm`.
"""
