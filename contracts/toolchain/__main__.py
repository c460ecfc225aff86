"""``python -m contracts.toolchain ...``: the same commands as ``psgw contracts ...``, for CI."""

from contracts.toolchain.cli import contracts

contracts(prog_name="python -m contracts.toolchain")
