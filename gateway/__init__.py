"""The policy gateway: config, policy chain, proxy, token issuer, admin API, catalog and the psgw CLI."""
