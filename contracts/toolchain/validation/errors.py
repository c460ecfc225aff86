"""Why a contract cannot be compiled for runtime validation."""


class ContractCompileError(Exception):
    """The contract uses something runtime validation cannot honour (a broken schema, a remote ``$ref``,
    a parameter style we do not parse). Raised once, when the gateway loads the contract, never per call."""
