"""``tinygpt doctor``: what tinygpt will use on this machine (machine.py), and proof that the
device computes what the CPU computes (proof.py): the most reported problem with tools like this
one is a GPU backend that runs but computes wrong numbers (Apple's MPS has, for attention and
bfloat16)."""
