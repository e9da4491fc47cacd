"""The protocol core: pure functions and state machines, no I/O, clock or randomness of its own."""
