"""The scheduler: schedules turned into pending runs, each fire time exactly once."""
