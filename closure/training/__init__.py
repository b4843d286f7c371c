"""Training machinery: data sets, configs, checkpoints, the stage loop and evaluation."""
