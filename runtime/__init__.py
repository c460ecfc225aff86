"""What every psgateway process shares: app factory, settings, problem+json, correlation, auth, downstream calls."""
