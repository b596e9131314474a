"""Text to tokens: every tokenizer behind one protocol (tokenizer.py: characters, tiktoken's
encodings, a BPE learned here in bpe.py, records with an end-of-record token in records.py), the
corpus read once into a cached, checksummed token file and sliced into batches (corpus.py), and the
corpora tinygpt can fetch (datasets.py) or make (repeats.py, the induction corpus)."""
