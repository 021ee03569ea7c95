"""flowercam: on-device flower classification (Oxford 102) with a TFLite int8 model.

Importing this package never loads TensorFlow: the device needs only numpy, Pillow,
Typer and a TFLite interpreter (ai-edge-litert or tflite-runtime).
"""

import os

# numpy's BLAS runs one thread: its products here are small (an adapter's, per photo), and an idle BLAS thread pool
# spins on the cores the TFLite interpreter's threads need (measured when the adapter searched its references with
# one 1,420 x 1,280 product, 2 threads on 2 cores: 7.8 ms an inference instead of 4.7 ms; its blocks of 64 are now
# below OpenBLAS's threading size, and this stays the guard). Set before numpy is first imported; an
# OPENBLAS_NUM_THREADS of your own is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
