"""Text to tokens: the tokenizers (tokenizer.py), a corpus's files read as text (sources.py),
tokenized once (corpus.py) into a checksummed cache (token_cache.py) and sliced into batches
(batches.py); and the corpora tinygpt can fetch (datasets.py) or make (repeats.py)."""
