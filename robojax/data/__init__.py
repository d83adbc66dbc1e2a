"""Demonstration datasets (HDF5, robomimic layout), on-device window sampling, collection."""

from robojax.data.demos import DemoFileError, Demos, check_fits, from_episodes, load, save
from robojax.data.sampler import DemoArrays, sample_batch, to_device, window

__all__ = ["DemoArrays", "DemoFileError", "Demos", "check_fits", "from_episodes", "load",
           "sample_batch", "save", "to_device", "window"]
