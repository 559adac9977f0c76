"""Explanation: why each verdict (condition leaves and their truth), the result record, the assessment, reports."""
