"""flowercam: on-device flower classification (Oxford 102) with a TFLite int8 model.

Importing this package never loads TensorFlow: the device needs only numpy, Pillow,
Typer and a TFLite interpreter (ai-edge-litert or tflite-runtime).
"""

__version__ = "0.1.0"
