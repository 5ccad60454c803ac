"""L2/L3 constructs. Their properties are attrs classes checked against CUE's JSON Schema."""
