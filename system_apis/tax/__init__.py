"""Tax system API v1 (contracts/system/tax/v1.yaml)."""
