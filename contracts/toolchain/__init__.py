"""The contract toolchain: load, lint, diff and validate the OpenAPI contracts under ``contracts/``.

Import what you need from its modules; this package imports nothing, so the gateway's runtime validation
does not pay for the linter or the OpenAPI validator.

- ``loader``: YAML -> ``ContractDocument`` with a position for every JSON pointer; local ``$ref``s
- ``catalog``: discover ``<layer>/<api>/v<N>.yaml`` files as ``ApiVersion`` records
- ``lint``: the house ruleset (PSG-xxx)
- ``diff``: breaking-change detection (BRK/ADD/INF-xxx) and changelogs
- ``validation``: ``CompiledContract`` for routing and request/response validation on the hot path
- ``published``: the CI guard that published versions only change additively
- ``cli``: the ``contracts`` click group (mounted as ``psgw contracts``)
"""
