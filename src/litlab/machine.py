"""What this machine offers a process: the CPU cores it may run on and its physical memory, which
set the defaults of settings left null (DataLoader workers, decoding threads, the in-memory budget)
and how many threads read a large table."""

import os


def cpu_cores() -> int:
    """The CPU cores this process may run on; macOS and Windows have no affinity to ask, only a count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def physical_memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
