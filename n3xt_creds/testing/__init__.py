"""Test helpers: the local N3XT token-endpoint emulator and the pytest plugin (being written)."""
