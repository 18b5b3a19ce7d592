"""Data path: splits, datasets, samplers and the LightningDataModule."""
