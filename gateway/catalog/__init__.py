"""The developer catalog at /catalog: every API by layer and version, reference docs, changelogs, try-it."""
