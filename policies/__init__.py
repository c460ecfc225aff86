"""Gateway policies, one package each (Kong-style): a config Struct, one async handler, its stores."""
