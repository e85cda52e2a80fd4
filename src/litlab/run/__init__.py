"""One run's life: build, train, evaluate, predict, its record and run dir, interrupts, CLI help."""
