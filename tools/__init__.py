"""Development tools (not shipped): the import-linter contract the layers are checked with."""
