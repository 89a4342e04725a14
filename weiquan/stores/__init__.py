"""Where data is kept: the masking tracker store, the hand-off store, the Redis lock store, retention over every
store."""
