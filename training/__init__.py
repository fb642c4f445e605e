"""Training, evaluation and conversion of ecgd's default rhythm model (needs the [train] extra)."""
