"""pixelpipe."""
