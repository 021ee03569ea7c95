"""Learning on the device: fitting an adapter from the owner's photos (pycoral's ``learn/`` in spirit). It reads
the model's outputs and writes an adapter; the base model is never touched. Applying an adapter is the model's."""
