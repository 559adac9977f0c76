"""The engines that fire a compiled pack: durable-rules (the one door to it) and the plain-Python ones."""
