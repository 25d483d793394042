"""What runs read models: the projector (exactly-once, per-model failures), the parallel rebuild, the
registry of read models, and the from-scratch replay paths that answers are held equal to."""
