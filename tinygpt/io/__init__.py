"""What every layer shares to talk to the outside: the two terminals (console.py: stdout for data,
stderr for the rest, and :func:`printable` for any text a model or a file name brings) and
crash-safe, bounded file reads and writes (files.py)."""
