"""``tinygpt doctor``: what tinygpt will use on this machine (machine.py), and proof that the
device computes what the CPU computes (proof.py).

The most reported problem with tools like this one is a GPU backend that runs but computes
wrong numbers (Apple's MPS has done so for attention and bfloat16), so the doctor runs a small
model's forward pass, attention weights, one training step and a sampled token on the chosen
device and on the CPU, and says which tolerance each comparison used."""
