"""What every layer shares to talk to the outside: the two terminals (console.py) and
crash-safe, bounded file reads and writes (files.py), and JSON every parser reads
(json_text.py)."""
