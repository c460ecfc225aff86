"""PSG-302: every operation is protected by OAuth2 client credentials with explicit scopes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_list, as_mapping, effective_security
from contracts.toolchain.pointer import join_pointer

SCHEME = "oauth2"


def _declared_scopes(context: LintContext) -> tuple[set[str] | None, Violation | None]:
    """Scopes of the oauth2 client-credentials scheme, or the violation that it is missing."""
    pointer = join_pointer("/components/securitySchemes", SCHEME)
    schemes = as_mapping(as_mapping(context.document.content.get("components")).get("securitySchemes"))
    scheme = schemes.get(SCHEME)
    if not isinstance(scheme, Mapping):
        return None, Violation("/components", "no 'oauth2' security scheme in components.securitySchemes")
    flow = as_mapping(as_mapping(scheme.get("flows")).get("clientCredentials"))
    if scheme.get("type") != "oauth2" or not flow:
        return None, Violation(
            pointer, "the 'oauth2' security scheme must be type oauth2 with a clientCredentials flow"
        )
    return set(as_mapping(flow.get("scopes"))), None


@rule(
    "PSG-302",
    "oauth2-scopes",
    Severity.ERROR,
    "The gateway authorizes by scope per operation; an operation without scopes is either open or all-or-nothing.",
)
def oauth2_scopes(context: LintContext) -> Iterator[Violation]:
    declared, missing_scheme = _declared_scopes(context)
    reported: set[str] = set()
    if missing_scheme is not None:
        yield missing_scheme
    for site in context.operations:
        security = effective_security(context.document, site)
        if security is None or not security[0]:
            yield Violation(site.pointer, f"{site.label} is not secured (security: [{{oauth2: [scopes]}}])")
            continue
        requirements, pointer = security
        for index, requirement in enumerate(requirements):
            requirement_pointer = join_pointer(pointer, index)
            scopes = as_mapping(requirement).get(SCHEME)
            if not isinstance(scopes, list) or not scopes:
                yield Violation(requirement_pointer, f"{site.label} must require oauth2 with at least one scope")
                continue
            for scope_index, scope in enumerate(as_list(scopes)):
                scope_pointer = join_pointer(requirement_pointer, SCHEME, scope_index)
                # Document-level security is shared by every operation: report each scope once.
                if declared is not None and scope not in declared and scope_pointer not in reported:
                    reported.add(scope_pointer)
                    yield Violation(
                        scope_pointer, f"scope {scope!r} is not declared in the oauth2 clientCredentials flow"
                    )


RULES = (oauth2_scopes,)
