"""Team voorbeeld: worked examples that learn from the training year, between the reference floor and the ceiling."""
