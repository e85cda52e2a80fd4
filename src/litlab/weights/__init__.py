"""Which of a run's weights train when (freezing) and their running average (averaging); where they
start from another run is litlab.checkpoints.init_from."""
