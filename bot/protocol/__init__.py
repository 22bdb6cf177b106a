"""What channels, cards and the core say to each other: turns in, replies out, typed ids."""
