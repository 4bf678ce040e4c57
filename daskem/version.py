"""The installed daskem's version, as model files, reports and ``--version`` give it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("daskem")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
