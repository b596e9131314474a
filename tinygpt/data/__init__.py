"""Text to tokens: every tokenizer behind one protocol (tokenizer.py: characters, tiktoken's
encodings, a BPE learned here in bpe.py, records with an end-of-record token in records.py); a
corpus's files read as text (sources.py), tokenized once (corpus.py) into a checksummed cache
entry (token_cache.py) and sliced into batches (batches.py); and the corpora tinygpt can fetch
(datasets.py) or make (repeats.py, the induction corpus)."""
