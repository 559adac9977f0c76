"""Rule logic: the facts a rule may read, condition trees in three-valued logic, the compiler to patterns."""
