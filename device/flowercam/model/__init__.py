"""The model: what every other part uses. A TFLite model and its sidecar, the interpreter, preprocessing, scores
and labels, and a learned adapter applied on top of the model's answer (its file format too). Numpy, Pillow and
a TFLite interpreter only; nothing here knows of learning, cameras, the daemon or the command line."""
