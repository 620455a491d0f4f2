"""Team reference: one honest, simple baseline per task, the score every team has to beat."""
