"""Final suite: everything, on the mirror of production (lts), plus carried-over state."""
