"""Dose arithmetic: radiobiology (BED, EQD2, inverses), the named calculations rules ask for, per-policy limits."""
