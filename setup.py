"""Packages are found, never listed by hand: ``device/flowercam/`` and its subpackages, ``build_models``,
``calibration``."""

from setuptools import find_packages, setup

setup(packages=[*find_packages("device", include=["flowercam", "flowercam.*"]),
                *find_packages(include=["build_models", "build_models.*", "calibration", "calibration.*"])])
