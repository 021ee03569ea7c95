"""Calibration: the representative dataset that calibrates int8 quantization, and confidence calibration.

Both feed the exported model: the first its quantization ranges, the second the softmax
temperature the device applies. Images go through the device's own preprocessing.
"""
