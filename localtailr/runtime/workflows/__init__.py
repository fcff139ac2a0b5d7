"""The workflow engine: workflow runs moved forward from rows of the store; tasks run."""
