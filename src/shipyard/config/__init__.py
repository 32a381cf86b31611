"""Config as code: the schema and loader of shipyard.yaml, and the server settings."""

from shipyard.config.durations import parse_duration
from shipyard.config.loader import load_config, load_config_file
from shipyard.config.schema import ProjectConfig
from shipyard.config.settings import Settings

__all__ = ["ProjectConfig", "Settings", "load_config", "load_config_file", "parse_duration"]
