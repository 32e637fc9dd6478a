"""Training utilities: synthetic data generation for the roadwork YOLO detector."""
