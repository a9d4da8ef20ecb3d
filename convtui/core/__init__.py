"""The numeric core: NumPy + Numba only. It never imports textual, plotext or convtui.tui, and importing any of
it changes nothing in the process (see `convtui.runtime` for the one explicit set-up).

Rooms: `ops` (Numba kernels and shape rules), `nn` (layers, architectures, initialisers, optimisers),
`training` (config, trainer and its events, evaluation, snapshots, the one text formatter), `storage` (IDX data,
checkpoints, run folders, atomic writes), `errors` (the one error base class).
Layout: images are NCHW float32 (batch, channels, height, width); conv weights are (K, C, FH, FW);
dense weights are (in, out).
"""
