"""The rows of the settings table, one module per group of documentation sections."""
