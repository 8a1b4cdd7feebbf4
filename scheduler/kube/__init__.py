"""API access for the live scheduler: a configured client, informers, the binder,
events, and vecsched's own error hierarchy at the boundary."""
