"""Settings as data: one table drives argparse, the config file, the environment and the docs."""

from forkhorn.config.config import Config, ConfigError
from forkhorn.config.settings import SETTINGS, Setting

__all__ = ["SETTINGS", "Config", "ConfigError", "Setting"]
