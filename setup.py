"""Packages are found, never listed by hand: ``device/`` installs as ``flowercam`` with all its subpackages."""

from setuptools import find_packages, setup

setup(packages=["flowercam", *(f"flowercam.{name}" for name in find_packages("device")),
                *find_packages(include=["build_models", "build_models.*", "calibration", "calibration.*"])])
