"""Retraining tasks: data with review corrections, Elastic DDP fine-tuning with checkpoints, governed promotion."""
