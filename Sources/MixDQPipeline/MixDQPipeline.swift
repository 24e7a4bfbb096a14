// Text-to-image pipeline, calibration-data generation and the embedded default model.
