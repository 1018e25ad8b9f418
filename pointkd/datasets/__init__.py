"""Point-cloud and scene datasets."""
