#!/usr/bin/env python3
"""Independent reference for PissaTest: numpy's SVD of two small matrices.

PEFT's PiSSA initialisation (tuners/lora/layer.py, pissa_init) takes, for a weight W (out, in) and
scaling = lora_alpha / r, the top r singular triplets W ~ U_r S_r Vh_r and sets
    A = diag(sqrt(S_r / scaling)) Vh_r    (r, in)
    B = U_r diag(sqrt(S_r / scaling))     (out, r)
    W_res = W - scaling * B A
This script writes, for each matrix, W, numpy's S, U_r, Vh_r and PEFT's A, B and W_res computed
with numpy (float64, then rounded to float32 for the JSON), into
trainer-core/src/test/resources/pissa/svd.json. Singular vectors are defined up to sign; the
test compares |A|, |B| and the sign-free product B A.

  tall:  12 x 8, Gaussian entries (distinct singular values)
  wide:  24 x 40 with singular values 0.5^i (a decaying spectrum, as trained weights have):
         the randomized SVD must recover its top-r subspace, transposing the wide matrix first

Regenerate from the repository root:  python3 trainer-core/src/test/python/make_pissa_fixtures.py
"""
import json
import os

import numpy as np

R = 3
ALPHA = 6.0          # scaling = ALPHA / R = 2


def case(w):
    u, s, vh = np.linalg.svd(w, full_matrices=False)
    scaling = ALPHA / R
    root = np.sqrt(s[:R] / scaling)
    a = root[:, None] * vh[:R]
    b = u[:, :R] * root[None, :]
    res = w - scaling * b @ a
    f = lambda m: np.asarray(m, dtype=np.float32).tolist()
    return {"w": f(w), "s": f(s), "u_r": f(u[:, :R]), "vh_r": f(vh[:R]), "a": f(a), "b": f(b), "w_res": f(res),
            "rank": R, "alpha": ALPHA}


def main():
    rng = np.random.default_rng(20241201)
    tall = rng.standard_normal((12, 8)).astype(np.float32).astype(np.float64)
    q1, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    q2, _ = np.linalg.qr(rng.standard_normal((40, 24)))
    spectrum = 0.5 ** np.arange(24)
    wide = ((q1 * spectrum[None, :]) @ q2.T).astype(np.float32).astype(np.float64)
    out = {"tall": case(tall), "wide": case(wide)}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../resources/pissa/svd.json")
    with open(path, "w") as fh:
        json.dump(out, fh)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
