"""The daemon: one a home; starts pending runs, supervises them, fires schedules."""
