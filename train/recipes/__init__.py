"""Training recipes as TOML files (`emoview train NAME`); loaded by `train.config.load_recipe`."""
