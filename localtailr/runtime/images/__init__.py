"""Images: one cached virtualenv per image key, and the interpreters they are built on."""
