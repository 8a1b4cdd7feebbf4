"""vecsched's runtime: the live scheduler, its configuration, API access,
metrics, the extender server, the embedded API server and the command line.
It drives the pure ``scoring`` core; nothing here is imported by ``scoring``.
"""
