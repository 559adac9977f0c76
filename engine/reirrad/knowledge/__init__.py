"""The rule pack and its knowledge data (evidence, tables, assessment, lists), loaded and checked once."""
