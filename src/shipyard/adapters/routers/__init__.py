"""Traffic routers: one file per kind behind ports.routers.TrafficRouter; registry.py maps kind names."""
