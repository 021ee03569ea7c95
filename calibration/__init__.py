"""Calibration: the representative dataset that calibrates int8 quantization, and confidence calibration.

Both feed the exported model: the first its quantization ranges, the second the softmax temperature that
export bakes into the graph (``--scores probabilities``, the default) or that the device applies to the logits
(``--scores logits``). Images go through the device's own preprocessing.
"""
