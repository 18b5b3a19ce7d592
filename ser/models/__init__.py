"""Encoders, pooling, loss, metrics and the LightningModule that ties them together."""
