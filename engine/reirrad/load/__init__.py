"""Reading input files: strict YAML, JSON Schema validation, where the bundled or source pack lives."""
