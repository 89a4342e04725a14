"""The edges of the system: input channels, limits at every edge, bounded action-server calls, masked logs."""
