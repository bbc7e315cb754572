"""Model code shared by the document, evaluation and retraining tasks (MiniLM, loaded offline)."""
