"""The model zoo: each model in its own module, written from the equation quoted in its docstring.

A model file holds the model and the equation it implements, nothing else (no data, no training loop, no
options, no PyTorch twin); how each is trained, sampled and driven from the command line is its recipe in
:mod:`minigen.recipes`, and the PyTorch twins used for comparisons live in ``benchmarks/``.

Image models (MNIST): :mod:`.gan`, :mod:`.dcgan`, :mod:`.cgan`, :mod:`.wgan_gp`, :mod:`.stylegan`,
:mod:`.vae`, and :mod:`.classifier` (the MNIST CNN, which also scores generated digits, and an MLP).
Language models: :mod:`.gpt` (with a KV cache for generation), :mod:`.char_rnn`, :mod:`.ngram`, :mod:`.bpe`,
:mod:`.word2vec`, :mod:`.seq2seq`; :mod:`.sampling` (temperature / top-k / top-p) is what they sample with.
Audio: :mod:`.wavenet`. Importing this package is cheap: the model modules load when you import them.
"""
