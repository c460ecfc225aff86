"""Runtime validation of calls against a contract: used by the gateway on every call and by tests.

contract = CompiledContract.from_file(Path("contracts/experience/mobile-time/v1.yaml"))
found = contract.match("POST", "/experience/mobile-time/v1/time-entries")
if found is None:
    ...  # 404, or 405 with contract.allowed_methods(path)
issues = found.operation.validate_request(found.path_params, query, headers, body, content_type)
"""

from contracts.toolchain.validation.contract import CompiledContract, CompiledOperation, RouteMatch
from contracts.toolchain.validation.errors import ContractCompileError
from contracts.toolchain.validation.issues import IssueLocation, ValidationIssue
from contracts.toolchain.validation.parameters import QueryInput

__all__ = [
    "CompiledContract",
    "CompiledOperation",
    "ContractCompileError",
    "IssueLocation",
    "QueryInput",
    "RouteMatch",
    "ValidationIssue",
]
