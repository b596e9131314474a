"""Drawing without a plotting library: PNG encoding, a bitmap font and loss-curve plots.

Nothing here knows about terminals (no rich): callers decide where the pictures go.
"""
