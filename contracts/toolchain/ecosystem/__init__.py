"""The ecosystem's own tools run over our contracts: Spectral, Redocly (linters), openapi-typescript (types).

They come from the npm registry at pinned versions, installed once into a cache directory under the
repository (``.cache/node-tools``, gitignored) by :func:`node_tools.ensure_node_tools`.
"""
