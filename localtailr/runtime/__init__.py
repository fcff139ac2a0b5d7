"""What runs: daemon, supervisor, scheduler, image builder, the bootstrap of user code."""
