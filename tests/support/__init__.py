"""What the tests share: the job modules their runs import, seeds and helpers (no tests here)."""
