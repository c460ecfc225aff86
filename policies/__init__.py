"""Gateway policies, one package each (as Kong's plugins): a config schema, a handler with its phases, its store.

``policies.registry`` finds them, ``policies.chain`` binds and orders them; policies/README.md shows how to write one.
"""
