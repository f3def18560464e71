"""css-upgrade-scout: choose the image a Huawei Cloud CSS cluster can be upgraded to, and announce it."""

__version__ = "0.1.0"
