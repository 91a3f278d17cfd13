"""reachprobe: network reachability measurement probe."""

__version__ = "0.1.0"
