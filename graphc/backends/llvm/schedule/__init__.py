"""The schedule of one program under one binding: steps, storage, liveness and placement
(plan), values read in place through strides (views), and which steps run on one thread
(serial)."""
