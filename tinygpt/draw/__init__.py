"""Drawing without a plotting library: PNG encoding, a bitmap font, loss-curve plots (no terminal code)."""
