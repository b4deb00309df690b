"""emovoice's engine: photo -> face -> emotion -> voice, and dataset -> trained model."""

import os

# TensorFlow's C++ start-up chatter (no CUDA on a laptop, CPU features) is noise to users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
