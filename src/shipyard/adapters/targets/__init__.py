"""Deploy targets: one file per kind behind ports.targets.DeployTarget; registry.py maps kind names."""
