"""Versioned OpenAPI contracts, the canonical model, and the contract toolchain."""

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
