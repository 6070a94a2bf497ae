"""Datasets: where they come from, the prepared-tensor format, and the device-resident loader."""
