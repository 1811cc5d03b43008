"""Config-driven experiment runner for ablation studies of recurrent sequence models."""
