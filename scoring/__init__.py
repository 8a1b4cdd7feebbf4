"""vecsched's scoring core: pure, synchronous and vectorised.

Everything a placement decision needs lives here -- quantities, the
conversion of Pod and Node objects into numbers, the struct-of-arrays
``NodeTable`` over all nodes, the plugin framework and the plugins. There is
no I/O and no asyncio in this package, and it never imports ``scheduler``:
the live scheduler, the extender, ``explain`` and the strategy lab all drive
the very same code.
"""
